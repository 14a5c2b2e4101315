"""Pattern-based profile value extraction from memory text.

Keys are WHATWG autocomplete names (memory.profile.PROFILE_KEYS). Only first-person
statements count ("my phone number is ...", "I joined X as Y"): "my sister's phone is ..."
is not the user's phone. Each value carries a confidence: an explicit cue ("my email is")
scores higher than a value that merely appears in a first-person note.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

CONF_EXPLICIT = 0.9
CONF_CONTEXT = 0.7
CONF_WEAK = 0.55

_CAP = r"[A-ZÀ-ÖØ-Þ][\w'’&-]*"
# Proper-noun phrase: capitalized words, allowing a few lowercase joiners (Bank of America, Casa da
# Música).
_PROPER = rf"{_CAP}(?:\s+(?:(?:of|de|da|do|der|von|van|la|le|&)\s+)?{_CAP}){{0,4}}"
_MONTHS = {
    m: i
    for i, m in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ],
        1,
    )
}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
# German, Portuguese, Spanish, French month names (full forms; the English 3-letter prefixes cover
# most short ones).
for _names in (
    "januar februar märz april mai juni juli august september oktober november dezember",
    "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro",
    "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
):
    _MONTHS.update({m: i for i, m in enumerate(_names.split(), 1)})
_MONTHS.update(
    {"setiembre": 9, "maerz": 3, "marz": 3, "fevrier": 2, "aout": 8, "decembre": 12, "marco": 3}
)


@dataclass(frozen=True)
class Extracted:
    """A profile value found in a memory's text."""

    key: str
    value: str
    confidence: float
    evidence: str  # the matched text, for review


Extractor = Callable[[str], Iterator[Extracted]]
EXTRACTORS: dict[str, Extractor] = {}


def extractor(name: str) -> Callable[[Extractor], Extractor]:
    def register(fn: Extractor) -> Extractor:
        EXTRACTORS[name] = fn
        return fn

    return register


def _clean(value: str) -> str:
    return " ".join(value.strip(" \t\n,;:.()\"'").split())


# -- name -------------------------------------------------------------------------------
_NAME = re.compile(
    r"\b(?i:my (?:full )?name is|i am called|i'm called|call "
    rf"me)\s+(?P<v>{_CAP}(?:\s+{_CAP}){{0,3}})"
)


@extractor("name")
def _name(text: str) -> Iterator[Extracted]:
    for m in _NAME.finditer(text):
        full = _clean(m.group("v"))
        conf = CONF_EXPLICIT if m.group(0).lower().startswith("my") else CONF_CONTEXT
        yield Extracted("name", full, conf, m.group(0))
        parts = full.split()
        if len(parts) >= 2:
            yield Extracted("given-name", parts[0], conf, m.group(0))
            yield Extracted("family-name", parts[-1], conf, m.group(0))


# -- birthday ---------------------------------------------------------------------------
_YEAR = r"(?P<y>(?:18|19|20)\d\d)"
_MNAME = r"[A-Za-zÀ-ÿ]{3,10}"
_DATE_DMY = re.compile(
    rf"(?P<d>\d{{1,2}})(?:st|nd|rd|th|er|º|ª)?\.?\s+(?:of\s+|de\s+)?(?P<m>{_MNAME})\.?,?\s+(?:de\s+)?{_YEAR}"
)
_DATE_MDY = re.compile(rf"(?P<m>{_MNAME})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+{_YEAR}")
_DATE_ISO = re.compile(rf"{_YEAR}-(?P<m>\d{{1,2}})-(?P<d>\d{{1,2}})")
_DATE_NUM = re.compile(
    rf"(?P<d>\d{{1,2}})[./](?P<m>\d{{1,2}})[./]{_YEAR}"
)  # day first (outside the US)
_DAY_MONTH = re.compile(
    rf"(?P<d>\d{{1,2}})(?:st|nd|rd|th|er|º)?\.?\s+(?:of\s+|de\s+)?(?P<m>{_MNAME})\b"
    rf"|(?P<m2>{_MNAME})\s+(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\b"
)
_BDAY_CUE = re.compile(
    r"\b(?:i was born|i am born|i'm born|my birthday is|my birthday's|my date of birth is|born "
    r"on|my birth ?date is|dob:?|"
    r"geboren(?: am)?|ich bin am|mein geburtstag ist|geburtsdatum:?|nasci(?: a| em| no dia)?|o meu "
    r"anivers[áa]rio [ée]|"
    r"data de nascimento:?|nac[íi](?: el)?|mi cumplea[ñn]os es|fecha de nacimiento:?|je suis "
    r"n[ée]e?(?: le)?|"
    r"mon anniversaire (?:est|c'est)|date de naissance:?)(?!\w)",
    re.IGNORECASE,
)


def parse_date(text: str) -> str | None:
    """The first full date in `text` as YYYY-MM-DD (day-month-year, month-day-year or ISO)."""
    for pattern in (_DATE_ISO, _DATE_DMY, _DATE_MDY, _DATE_NUM):
        m = pattern.search(text)
        if not m:
            continue
        month_s = m.group("m").lower()
        month = int(month_s) if month_s.isdigit() else _month(month_s)
        day, year = int(m.group("d")), int(m.group("y"))
        if month and 1 <= month <= 12 and 1 <= day <= 31:
            return f"{year:04d}-{month:02d}-{day:02d}"
    return None


def _month(name: str) -> int | None:
    name = name.lower().rstrip(".")
    return _MONTHS.get(name) or (_MONTHS.get(name[:3]) if name[:3].isascii() else None)


@extractor("bday")
def _bday(text: str) -> Iterator[Extracted]:
    for m in _BDAY_CUE.finditer(text):
        window = text[m.end() : m.end() + 40]
        date = parse_date(window)
        if date:
            yield Extracted("bday", date, CONF_EXPLICIT, text[m.start() : m.end() + 40].strip())
            return
        dm = _DAY_MONTH.search(window)
        if dm:  # a birthday without its year: day and month only
            day = int(dm.group("d") or dm.group("d2"))
            month = _month(dm.group("m") or dm.group("m2"))
            if month and 1 <= day <= 31:
                ev = text[m.start() : m.end() + 40].strip()
                yield Extracted("bday-day", str(day), CONF_EXPLICIT, ev)
                yield Extracted("bday-month", str(month), CONF_EXPLICIT, ev)
                return
    # "ich bin am 17. April 1991 in Bremen geboren": the cue comes after the date
    for m in re.finditer(r"\b(?:geboren|born)\b", text, re.IGNORECASE):
        date = parse_date(text[max(0, m.start() - 60) : m.start()])
        if date and re.search(
            r"\b(?:ich|i)\b", text[max(0, m.start() - 80) : m.start()], re.IGNORECASE
        ):
            yield Extracted(
                "bday", date, CONF_CONTEXT, text[max(0, m.start() - 60) : m.end()].strip()
            )
            return


# -- phone / email ----------------------------------------------------------------------
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().\-/]{5,18}\d(?!\w)")
_PHONE_CUE = re.compile(
    r"\bmy (?:new |current |mobile |cell |home |work )*(?:phone|mobile|cell|telephone|number)\b"
    r"|\b(?:i|we) (?:got|have) a new (?:phone|mobile) number\b|\b(?:reach|call|text|ring) me "
    r"(?:now )?(?:at|on)\b"
    r"|^\s*(?:new )?(?:phone|mobile|number|tel)\b"
    r"|\bmeine? (?:neue )?(?:handy|telefon|mobil)?(?:nummer|handy|telefon)\b|\bneue "
    r"(?:handy|telefon)?nummer\b"
    r"|\b(?:o )?meu (?:novo )?(?:n[úu]mero|telem[óo]vel|telefone|celular)\b|\bnovo n[úu]mero\b"
    r"|\bmi (?:nuevo )?(?:n[úu]mero|tel[ée]fono|m[óo]vil|celular)\b|\bnuevo n[úu]mero\b"
    r"|\bmon (?:nouveau )?(?:num[ée]ro|portable|t[ée]l[ée]phone)\b|\bnouveau num[ée]ro\b",
    re.IGNORECASE | re.MULTILINE,
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_EMAIL_CUE = re.compile(
    r"\bmy (?:new |current |personal |work )*e-?mail\b|\b(?:e-?mail|write to|contact|reach) me at\b"
    r"|^\s*(?:new )?e-?mail\b|\bmeine (?:neue )?e-?mail\b|\b(?:o )?meu (?:novo )?e-?mail\b"
    r"|\bmi (?:nuevo )?(?:correo|e-?mail)\b|\bmon (?:nouvel? )?(?:adresse )?(?:e-?mail|courriel)\b",
    re.IGNORECASE | re.MULTILINE,
)


@extractor("tel")
def _tel(text: str) -> Iterator[Extracted]:
    for cue in _PHONE_CUE.finditer(text):
        m = _PHONE.search(text, cue.end(), cue.end() + 60)
        if m and sum(c.isdigit() for c in m.group(0)) >= 7:
            yield Extracted("tel", _clean(m.group(0)), CONF_EXPLICIT, text[cue.start() : m.end()])
            return


@extractor("email")
def _email(text: str) -> Iterator[Extracted]:
    for cue in _EMAIL_CUE.finditer(text):
        m = _EMAIL.search(text, cue.end(), cue.end() + 80)
        if m:
            yield Extracted(
                "email", m.group(0).rstrip("."), CONF_EXPLICIT, text[cue.start() : m.end()]
            )
            return


# -- address ----------------------------------------------------------------------------
_POSTAL = r"(?:\d{4,5}(?:-\d{3,4})?|[A-Z]{1,2}\d[\dA-Z]?\s?\d[A-Z]{2})"
_CITY = rf"{_CAP}(?:[ -]{_CAP}){{0,2}}"
# "<street> <no>, <postal> <city>[, <country>]" (most of Europe): the street is what precedes the
# number.
_ADDR_EU = re.compile(
    rf"(?P<street>[^,.;:!?\n]{{3,60}}?\s\d{{1,5}}[a-zA-Z]?),\s*(?P<postal>{_POSTAL})\s+(?P<city>{_CITY})"
    rf"(?:,\s*(?P<country>{_CAP}(?:\s{_CAP})?))?"
)
# "<no> <street> <St|Road|...>, <city>[, <state>] <zip>" (US style) or "..., <city> <postcode>"
# (UK).
_STREET_TYPES = (
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl|Terrace|Ter|"
    r"Parkway|Pkwy|Highway|Hwy|Circle|Cir|Square|Sq|Trail|Row|Close|Crescent|Gardens|Hill|Mews|Walk)"
)
_ADDR_US = re.compile(
    rf"(?P<street>\d{{1,5}}[A-Za-z]?\s+(?:{_CAP}\s+){{0,3}}{_STREET_TYPES}\.?)"
    rf",\s*(?P<city>{_CITY})(?:,\s*(?P<state>[A-Z]{{2}}))?\s+(?P<postal>\d{{5}}(?:-\d{{4}})?)"
)
_ADDR_UK = re.compile(
    rf"(?P<street>\d{{1,5}}[A-Za-z]?\s+(?:{_CAP}\s+){{0,3}}{_STREET_TYPES}\.?)"
    rf",\s*(?P<city>{_CITY}),?\s+(?P<postal>[A-Z]{{1,2}}\d[\dA-Z]?\s?\d[A-Z]{{2}})\b"
)
# "12 rue de Rivoli, 75001 Paris" (France, Belgium): the number comes first.
_ADDR_FR = re.compile(
    rf"(?P<street>\d{{1,4}}(?:\s?(?:bis|ter))?,?\s+(?i:rue|avenue|av\.|boulevard|bd|place|chemin|all[ée]e|impasse|quai|"
    rf"cours|route)\s[^,\n]{{2,40}}),\s*(?P<postal>\d{{5}})\s+(?P<city>{_CITY})"
)
_ADDR_CUE = re.compile(
    r"\b(?:my|our) (?:new |home |current )*address\b|\bnew address\b|\b(?:i|we) (?:have |just |now "
    r")?(?:moved|live|relocated)\b"
    r"|(?:^|[.!?]\s+)(?:just |finally |we |i )?(?:moved|relocated)\b|\b(?:i'm|we're|i am|we are) "
    r"(?:now )?(?:living|based) (?:at|in)\b"
    r"|\b(?:meine|unsere) (?:neue )?adresse\b|\b(?:ich wohne|wir wohnen)\b|\bumgezogen\b"
    r"|\b(?:a )?(?:minha|nossa) (?:nova )?morada\b|\b(?:o )?(?:meu|nosso) (?:novo "
    r")?endere[çc]o\b|\b(?:moro|mudei|mud[áa]mos|vivo)\b"
    r"|\b(?:mi|nuestra) (?:nueva )?direcci[óo]n\b|\bnueva direcci[óo]n\b|\bnova morada\b|\bneue "
    r"adresse\b|\bnouvelle adresse\b|\b(?:me mud[ée]|nos mudamos|vivimos)\b"
    r"|\b(?:ma|notre) (?:nouvelle )?adresse\b|\bj'habite\b|\bnous habitons\b|\bd[ée]m[ée]nag[ée]",
    re.IGNORECASE | re.MULTILINE,
)
_LEAD_IN = re.compile(
    r"^.*\b(?:is|at|to|in der|in die|an "
    r"der|in|on|now|ist|lautet|nach|é|em|na|no|para|es|en|est|au|à|a)\s+(?=[A-ZÀ-ÖØ-Þ0-9])",
    re.DOTALL,
)


@extractor("address")
def _address(text: str) -> Iterator[Extracted]:
    if not _ADDR_CUE.search(text):
        return
    for pattern in (_ADDR_FR, _ADDR_EU, _ADDR_US, _ADDR_UK):
        m = pattern.search(text)
        if not m:
            continue
        street = _clean(
            _LEAD_IN.sub("", m.group("street")) if pattern is not _ADDR_FR else m.group("street")
        )
        if not re.search(r"[A-Za-zÀ-ÿ]", street):
            continue
        yield Extracted("street-address", street, CONF_CONTEXT, m.group(0))
        yield Extracted("postal-code", m.group("postal"), CONF_CONTEXT, m.group(0))
        yield Extracted("address-level2", _clean(m.group("city")), CONF_CONTEXT, m.group(0))
        if m.groupdict().get("state"):
            yield Extracted("address-level1", m.group("state"), CONF_CONTEXT, m.group(0))
        if m.groupdict().get("country"):
            yield Extracted("country-name", _clean(m.group("country")), CONF_CONTEXT, m.group(0))
        return


# -- employer / job title ---------------------------------------------------------------
_TITLE = r"(?P<title>[a-z][a-z/-]*(?:\s+(?:of\s+)?[a-z][a-z/-]*){0,4}?)"
_TITLE_END = (
    r"(?=\s*(?:[,.;!?(]|$|\s(?:at|in|for|with|building|since|from|on|and|where|because)\b))"
)
_JOB = re.compile(
    r"\b(?i:(?:i|i've|i have)\s+(?:just\s+|now\s+|recently\s+)?(?:started working|started "
    r"work|started|began working|"
    r"joined|work|am working|got a job|took a job|accepted a job|was "
    rf"hired)\s+(?:at|for|with|by)?\s*)(?P<org>{_PROPER})"
    rf"(?:\s+(?i:as)\s+(?:an?\s+|the\s+|their\s+|our\s+)?{_TITLE}{_TITLE_END})?",
)
_PROMOTED = re.compile(
    r"\b(?i:(?:i was|i've been|i have been|i got) promoted "
    rf"to)\s+(?:an?\s+|the\s+)?{_TITLE}{_TITLE_END}"
    rf"(?:\s+at\s+(?P<org>{_PROPER}))?",
)
_TITLE_IS = re.compile(
    rf"\b(?i:my (?:new |current )?(?:job )?title is)\s+(?:an?\s+|the\s+)?{_TITLE}{_TITLE_END}"
)
_ORG_IS = re.compile(rf"\b(?i:my (?:new |current )?(?:employer|company) is)\s+(?P<org>{_PROPER})")
# "I work as a nurse at X", "I'm now head of data at X": the title comes first.
_TITLE_FIRST = re.compile(
    rf"\b(?i:i\s+(?:now\s+)?work\s+as(?:\s+an?|\s+the)?|i'm\s+now|i\s+am\s+now|i'm\s+(?:an?|the)|i\s+am\s+(?:an?|the)|"
    rf"started\s+as(?:\s+an?)?|new\s+job:?)\s+{_TITLE}\s+(?i:at|for|with)\s+(?P<org>{_PROPER})"
)
_NEW_JOB_AT = re.compile(
    rf"\b(?i:(?:started|got|took|accepted|began)\s+(?:a\s+)?new\s+(?:job|position|role))\s+(?i:at|with)\s+(?P<org>{_PROPER})"
)
# German, Portuguese, Spanish, French: "<verb> <prep> ORG [as TITLE]" and "<verb> as TITLE <prep>
# ORG".
_TITLE_ML = (
    r"(?P<title>(?i:[a-zà-ÿ][a-zà-ÿ/-]*"
    r"(?:\s+(?:de\s+|da\s+|do\s+|of\s+)?[a-zà-ÿ][a-zà-ÿ/-]*){0,4}?))"
)
_TITLE_END_ML = (
    r"(?=\s*(?:[,.;!?(]|$|\s(?:bei|na|no|em|en|chez|pour|para|seit|desde|depuis|und|e|y|et|in|im|à|a|"
    r"au|at|for|bef[öo]rdert|geworden)\b))"
)
_ORG_ML = rf"(?P<org>{_PROPER})"
_AS = r"(?:als|como|comme|en tant que)"
_WORK_ML = (
    r"(?:ich\s+(?:arbeite|bin)\s+(?:jetzt\s+|seit\s+\w+\s+)?|ich\s+habe\s+|(?:eu\s+)?(?:comecei\s+a\s+trabalhar|trabalho|entrei)\s+|"
    r"(?:yo\s+)?(?:empec[ée]\s+a\s+trabajar|comenc[ée]\s+a\s+trabajar|trabajo|entr[ée])\s+|"
    r"je\s+(?:travaille|suis\s+entr[ée]e?)\s+|j'ai\s+(?:commenc[ée]\s+[àa]\s+travailler\s+|rejoint\s+))"
)
_JOB_ML = re.compile(
    rf"\b(?i:{_WORK_ML}(?:jetzt\s+|agora\s+|ahora\s+|maintenant\s+)?(?:bei|na|no|em|para\s+a|para\s+o|para|en|chez|pour)?\s*)"
    rf"{_ORG_ML}(?:\s+(?i:angefangen))?(?:\s+(?i:{_AS})\s+(?:(?i:um|uma|un|una|une|el|la|le|o|a)\s+)?{_TITLE_ML}{_TITLE_END_ML})?"
)
_JOB_ML_TITLE_FIRST = re.compile(
    rf"\b(?i:(?:ich\s+arbeite|trabalho|trabajo|je\s+travaille)\s+(?:jetzt\s+|agora\s+|ahora\s+|maintenant\s+)?{_AS})\s+"
    rf"(?:(?i:um|uma|un|una|une)\s+)?{_TITLE_ML}\s+(?i:bei|na|no|em|en|chez|pour|para)\s+{_ORG_ML}"
)
_PROMOTED_ML = re.compile(
    rf"\b(?i:ich\s+wurde\s+zum|ich\s+wurde\s+zur|fui\s+promovid[oa]\s+a|me\s+ascendieron\s+a|j'ai\s+[ée]t[ée]\s+promue?)\s+"
    rf"{_TITLE_ML}{_TITLE_END_ML}"
)
_NOT_ORG = frozenset(
    {
        "I",
        "My",
        "The",
        "A",
        "An",
        "We",
        "Today",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Ich",
        "Eu",
        "Yo",
        "Je",
        "Hoje",
        "Hoy",
        "Heute",
        "Aujourd",
    }
)


@extractor("job")
def _job(text: str) -> Iterator[Extracted]:
    for pattern in (
        _TITLE_FIRST,
        _JOB_ML_TITLE_FIRST,
        _JOB,
        _PROMOTED,
        _TITLE_IS,
        _ORG_IS,
        _NEW_JOB_AT,
        _JOB_ML,
        _PROMOTED_ML,
    ):
        for m in pattern.finditer(text):
            groups = m.groupdict()
            org = _clean(groups.get("org") or "")
            if org and org.split()[0] not in _NOT_ORG:
                yield Extracted("organization", org, CONF_CONTEXT, m.group(0))
            title = _clean(groups.get("title") or "")
            if title and len(title) >= 3:
                yield Extracted("organization-title", title, CONF_CONTEXT, m.group(0))
            if org or title:
                return


def extract(text: str) -> list[Extracted]:
    """Every profile value the patterns find, one per key (the first, most explicit match)."""
    out: dict[str, Extracted] = {}
    for fn in EXTRACTORS.values():
        for item in fn(text):
            if item.value and item.key not in out:
                out[item.key] = item
    return list(out.values())


# -- values proposed by the local model -------------------------------------------------
MODEL_PROMPT = (
    "Extract facts about the writer from this note. Reply with lines 'key: value' using only "
    "these keys: name, email, tel, street-address, postal-code, address-level2, country-name, "
    "bday, organization, organization-title. Reply 'none' if there are none.\n\nNote: {text}"
)
_MODEL_LINE = re.compile(
    r"^\s*[-*]?\s*(?P<key>[a-z][a-z0-9-]+)\s*:\s*(?P<value>.+?)\s*$", re.MULTILINE
)


def parse_model_reply(reply: str, source_text: str, allowed: frozenset[str]) -> list[Extracted]:
    """Keep only 'key: value' lines with a known key whose value literally occurs in the note:
    a 135M model invents values, so anything not grounded in the text is dropped."""
    out: dict[str, Extracted] = {}
    lowered = source_text.lower()
    for m in _MODEL_LINE.finditer(reply):
        key, value = m.group("key").lower(), _clean(m.group("value"))
        if (
            key not in allowed
            or key in out
            or not value
            or value.lower() in {"none", "unknown", "n/a"}
        ):
            continue
        if value.lower() not in lowered:
            continue
        out[key] = Extracted(key, value, CONF_WEAK, m.group(0).strip())
    return list(out.values())
