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
# Proper-noun phrase: capitalized words, allowing a few lowercase joiners (Bank of America, Casa da Música).
_PROPER = rf"{_CAP}(?:\s+(?:(?:of|de|da|do|der|von|van|la|le|&)\s+)?{_CAP}){{0,4}}"
_MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"], 1)}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9


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
_NAME = re.compile(rf"\b(?i:my (?:full )?name is|i am called|i'm called|call me)\s+(?P<v>{_CAP}(?:\s+{_CAP}){{0,3}})")


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
_DATE_DMY = re.compile(rf"(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\.?\s+(?:of\s+)?(?P<m>[A-Za-z]{{3,9}})\.?,?\s+{_YEAR}")
_DATE_MDY = re.compile(rf"(?P<m>[A-Za-z]{{3,9}})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+{_YEAR}")
_DATE_ISO = re.compile(rf"{_YEAR}-(?P<m>\d{{1,2}})-(?P<d>\d{{1,2}})")
_BDAY_CUE = re.compile(r"\b(?:i was born|i am born|my birthday is|my date of birth is|born on|my birth ?date is|dob:?)\b", re.IGNORECASE)


def parse_date(text: str) -> str | None:
    """The first full date in `text` as YYYY-MM-DD (day-month-year, month-day-year or ISO)."""
    for pattern in (_DATE_ISO, _DATE_DMY, _DATE_MDY):
        m = pattern.search(text)
        if not m:
            continue
        month_s = m.group("m").lower()
        month = int(month_s) if month_s.isdigit() else _MONTHS.get(month_s) or _MONTHS.get(month_s[:3])
        day, year = int(m.group("d")), int(m.group("y"))
        if month and 1 <= month <= 12 and 1 <= day <= 31:
            return f"{year:04d}-{month:02d}-{day:02d}"
    return None


@extractor("bday")
def _bday(text: str) -> Iterator[Extracted]:
    for m in _BDAY_CUE.finditer(text):
        window = text[m.end(): m.end() + 40]
        date = parse_date(window)
        if date:
            yield Extracted("bday", date, CONF_EXPLICIT, text[m.start(): m.end() + 40].strip())
            return


# -- phone / email ----------------------------------------------------------------------
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().\-/]{5,18}\d(?!\w)")
_PHONE_CUE = re.compile(r"\bmy (?:new |current |mobile |cell |home |work )*(?:phone|mobile|cell|telephone|number)\b"
                        r"|\b(?:i|we) (?:got|have) a new (?:phone|mobile) number\b|\breach me (?:at|on)\b", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_EMAIL_CUE = re.compile(r"\bmy (?:new |current |personal |work )*e-?mail\b|\bemail me at\b|\breach me at\b", re.IGNORECASE)


@extractor("tel")
def _tel(text: str) -> Iterator[Extracted]:
    for cue in _PHONE_CUE.finditer(text):
        m = _PHONE.search(text, cue.end(), cue.end() + 60)
        if m and sum(c.isdigit() for c in m.group(0)) >= 7:
            yield Extracted("tel", _clean(m.group(0)), CONF_EXPLICIT, text[cue.start(): m.end()])
            return


@extractor("email")
def _email(text: str) -> Iterator[Extracted]:
    for cue in _EMAIL_CUE.finditer(text):
        m = _EMAIL.search(text, cue.end(), cue.end() + 80)
        if m:
            yield Extracted("email", m.group(0).rstrip("."), CONF_EXPLICIT, text[cue.start(): m.end()])
            return


# -- address ----------------------------------------------------------------------------
_POSTAL = r"(?:\d{4,5}(?:-\d{3,4})?|[A-Z]{1,2}\d[\dA-Z]?\s?\d[A-Z]{2})"
_CITY = rf"{_CAP}(?:[ -]{_CAP}){{0,2}}"
# "<street> <no>, <postal> <city>[, <country>]" (most of Europe): the street is what precedes the number.
_ADDR_EU = re.compile(
    rf"(?P<street>[^,.;:!?\n]{{3,60}}?\s\d{{1,5}}[a-zA-Z]?),\s*(?P<postal>{_POSTAL})\s+(?P<city>{_CITY})"
    rf"(?:,\s*(?P<country>{_CAP}(?:\s{_CAP})?))?"
)
# "<no> <street> <St|Road|...>, <city>[, <state>] <zip>" (US/UK style).
_ADDR_US = re.compile(
    rf"(?P<street>\d{{1,5}}\s+(?:{_CAP}\s+){{0,3}}(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl)\.?)"
    rf",\s*(?P<city>{_CITY})(?:,\s*(?P<state>[A-Z]{{2}}))?\s+(?P<postal>\d{{5}}(?:-\d{{4}})?)"
)
_ADDR_CUE = re.compile(r"\b(?:my|our) (?:new |home |current )*address\b|\b(?:i|we) (?:have |just )?(?:moved|live|relocated)\b", re.IGNORECASE)
_LEAD_IN = re.compile(r"^.*\b(?:is|at|to|in|on|now)\s+(?=[A-ZÀ-ÖØ-Þ0-9])", re.DOTALL)


@extractor("address")
def _address(text: str) -> Iterator[Extracted]:
    if not _ADDR_CUE.search(text):
        return
    for pattern in (_ADDR_EU, _ADDR_US):
        m = pattern.search(text)
        if not m:
            continue
        street = _clean(_LEAD_IN.sub("", m.group("street")))
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
_TITLE_END = r"(?=\s*(?:[,.;!?(]|$|\s(?:at|in|for|with|building|since|from|on|and|where|because)\b))"
_JOB = re.compile(
    rf"\b(?i:(?:i|i've|i have)\s+(?:just\s+|now\s+|recently\s+)?(?:started working|started work|started|began working|"
    rf"joined|work|am working|got a job|took a job|accepted a job|was hired)\s+(?:at|for|with|by)?\s*)(?P<org>{_PROPER})"
    rf"(?:\s+(?i:as)\s+(?:an?\s+|the\s+|their\s+|our\s+)?{_TITLE}{_TITLE_END})?",
)
_PROMOTED = re.compile(
    rf"\b(?i:(?:i was|i've been|i have been|i got) promoted to)\s+(?:an?\s+|the\s+)?{_TITLE}{_TITLE_END}"
    rf"(?:\s+at\s+(?P<org>{_PROPER}))?",
)
_TITLE_IS = re.compile(rf"\b(?i:my (?:new |current )?(?:job )?title is)\s+(?:an?\s+|the\s+)?{_TITLE}{_TITLE_END}")
_ORG_IS = re.compile(rf"\b(?i:my (?:new |current )?(?:employer|company) is)\s+(?P<org>{_PROPER})")
_NOT_ORG = frozenset({"I", "My", "The", "A", "An", "We", "Today", "Monday", "Tuesday", "Wednesday", "Thursday",
                      "Friday", "Saturday", "Sunday"})


@extractor("job")
def _job(text: str) -> Iterator[Extracted]:
    for pattern in (_JOB, _PROMOTED, _TITLE_IS, _ORG_IS):
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
    "Extract facts about the writer from this note. Reply with lines 'key: value' using only these keys: "
    "name, email, tel, street-address, postal-code, address-level2, country-name, bday, organization, "
    "organization-title. Reply 'none' if there are none.\n\nNote: {text}"
)
_MODEL_LINE = re.compile(r"^\s*[-*]?\s*(?P<key>[a-z][a-z0-9-]+)\s*:\s*(?P<value>.+?)\s*$", re.MULTILINE)


def parse_model_reply(reply: str, source_text: str, allowed: frozenset[str]) -> list[Extracted]:
    """Keep only 'key: value' lines with a known key whose value literally occurs in the note:
    a 135M model invents values, so anything not grounded in the text is dropped."""
    out: dict[str, Extracted] = {}
    lowered = source_text.lower()
    for m in _MODEL_LINE.finditer(reply):
        key, value = m.group("key").lower(), _clean(m.group("value"))
        if key not in allowed or key in out or not value or value.lower() in {"none", "unknown", "n/a"}:
            continue
        if value.lower() not in lowered:
            continue
        out[key] = Extracted(key, value, CONF_WEAK, m.group(0).strip())
    return list(out.values())
