"""Question analysis: what kind of answer is wanted, about whom, and when.

Everything here is decided from the question's words alone (no model): the answer type
picks which spans of the evidence can be an answer, the subject decides whose memories count
(LoCoMo asks about "Caroline", a persona about "my sister"), and the time scope picks the
value valid then ("now", "in 2022", "before Lisbon").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from memory import dates as dates_
from memory import relevance, timeline

ANSWER_TYPES = ("person", "place", "date", "number", "duration", "yesno", "list", "description")

_AUX = r"(?:am|is|are|was|were|do|does|did|have|has|had|can|could|will|would|should|may|might)"
_TYPE_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "duration",
        re.compile(
            r"^\s*how long\b|\bfor how long\b"
            r"|\bhow many (?:years|months|weeks|days)\b(?! (?:ago|old))",
            re.I,
        ),
    ),
    (
        "date",
        re.compile(
            r"^\s*when\b|\bwhat (?:date|day|year|month|time)\b|\bwhich (?:date|day|year|month)\b"
            r"|\bhow long ago\b|\bsince when\b",
            re.I,
        ),
    ),
    (
        "number",
        re.compile(
            r"^\s*how (?:many|much|old|often|far|tall|big)\b"
            r"|\bwhat(?:'s| is) (?:my|the|her|his|their) (?:phone|mobile|cell)?\s*number\b"
            r"|\bhow many\b",
            re.I,
        ),
    ),
    (
        "place",
        re.compile(
            r"^\s*where\b"
            r"|\bwhich (?:city|country|town|place|street|school|university|state)\b"
            r"|\bwhat (?:city|country|town|place|address|street)\b",
            re.I,
        ),
    ),
    (
        "person",
        re.compile(
            r"^\s*who(?:m|se)?\b"
            r"|\bwhat(?:'s| is) the name of (?:my|her|his|their) (?:\w+ )?"
            r"(?:sister|brother|mother|father|mom|dad|friend|partner|wife|husband|boss|manager"
            r"|son|daughter|doctor|dentist)\b",
            re.I,
        ),
    ),
    ("yesno", re.compile(rf"^\s*{_AUX}\b", re.I)),
    (
        "list",
        re.compile(
            r"^\s*(?:what|which) (?:\w+ ){0,3}"
            r"(?:activities|events|things|books|places|hobbies|items|ways|kinds|types|pets"
            r"|instruments|sports|games|foods|countries|cities|names)\b"
            r"|\blist\b",
            re.I,
        ),
    ),
]

RELATIONS = frozenset(
    "sister brother mother father mom mum dad parents parent son daughter kids children child "
    "wife husband partner boyfriend girlfriend friend boss manager colleague coworker neighbour "
    "neighbor grandma grandmother grandpa grandfather aunt uncle cousin niece nephew dentist "
    "doctor therapist landlord roommate flatmate".split()
)
_NAME = re.compile(r"\b([A-Z][a-zà-ÿ]+(?:[-'][A-Z]?[a-zà-ÿ]+)?)\b")
_NOT_NAMES = (
    frozenset(
        "I I'm I've I'd What When Where Who Whom Whose Why How Which Did Do Does Is Are Was Were "
        "Can Could Would Will Should Have Has Had The A An My Our Your His Her Their In On At For "
        "From To "
        "Since Before After During Last Next This That And Or But If Tell Name List Give Show "
        "LGBTQ LGBT".split()
    )
    | {m for m in dates_.MONTHS if len(m) > 3}
    | set(dates_.WEEKDAYS)
)
_NOW = re.compile(
    r"\b(now|currently|current|these days|at the moment|today|still|anymore|any more)\b", re.I
)
_ANCHOR = (
    r"(?:i |we )?(?:moved? (?:to )?|lived? in |worked? (?:at|for) |joined |left )?"
    r"([A-Z][\w-]*(?:\s+[A-Z][\w-]*)*|\w+)"
)
_BEFORE = re.compile(r"\b[Bb]efore " + _ANCHOR)
_AFTER = re.compile(r"\b[Aa]fter " + _ANCHOR)


@dataclass(frozen=True)
class TimeScope:
    """When the question asks about. `now` prefers the newest value; a range or an event
    ("before Lisbon") prefers the value valid then."""

    now: bool = False
    past: bool = False
    start: date | None = None
    end: date | None = None
    before: str | None = None  # "before Lisbon": the value that was replaced by this one
    after: str | None = None

    @property
    def bounded(self) -> bool:
        return self.start is not None or self.before is not None or self.after is not None


@dataclass(frozen=True)
class Question:
    text: str
    answer_type: str
    subject: str  # "user", a person's name, or a relation ("sister")
    subject_is_name: bool
    names: tuple[str, ...]  # every person-like name in the question
    scope: TimeScope
    slot: str | None  # life slot asked for (residence, employer, phone, ...)
    wh: str  # the question word ("what", "when", ...)
    focus: tuple[str, ...] = field(default_factory=tuple)  # content words, in order
    slot_only: bool = False  # asks for the slot and nothing more specific ("where do I live?")
    present: bool = False  # present tense ("where does she live"): the newest memory wins
    kind_noun: str = ""  # "which cities": names the answer's kind (an anchor, not a focus word)

    @property
    def about_user(self) -> bool:
        return self.subject == "user"


_WORD = re.compile(r"[^\W_]+(?:'[a-z]+)?", re.UNICODE)
_STOP = frozenset(
    "a an the of to in on at for from by with about and or am is are was were be been do does did "
    "have has had i me my mine you your we our us he she his her him they them their it its this "
    "that these those what when where who whom whose which why how can could would will should "
    "may might "
    "there any some much many long ago ever still now currently current".split()
)


def content_words(text: str) -> tuple[str, ...]:
    words = (_strip_possessive(w.lower()) for w in _WORD.findall(text))
    return tuple(w for w in words if w not in _STOP and len(w) > 1)


def answer_type(question: str) -> str:
    for kind, pattern in _TYPE_RULES:
        if pattern.search(question):
            return kind
    return "description"


def names_in(question: str) -> tuple[str, ...]:
    """Capitalised words that look like people or places (not sentence-initial question words)."""
    found: list[str] = []
    for m in _NAME.finditer(question):
        word = m.group(1)
        if word in _NOT_NAMES or word.lower() in _NOT_NAMES:
            continue
        base = word[:-2] if word.endswith("'s") else word
        if base not in found:
            found.append(base)
    return tuple(found)


def subject_of(
    question: str, names: tuple[str, ...], people: frozenset[str] = frozenset()
) -> tuple[str, bool]:
    """Whom the question is about: a named person (known speakers win), a relation of the
    user ("my sister"), or the user."""
    low = question.lower()
    m = re.search(
        r"\b(?:my|our)\s+(?:\w+\s+)?("
        + "|".join(sorted(RELATIONS, key=len, reverse=True))
        + r")(?:'s)?\b",
        low,
    )
    named = [n for n in names if _matches_person(n, people)] or (
        [names[0]] if names and not people and not re.search(r"\b(i|my|me)\b", low) else []
    )
    if m:
        # "my sister Meera": the name that follows the relation is the subject.
        after = re.match(r"\s*([A-Z][\w'-]+)", question[m.end() :])
        if after and after.group(1) in names:
            return after.group(1), True
    if named:
        return named[0], True
    if m:
        return m.group(1), False
    return "user", False


def same_person(a: str | None, b: str | None) -> bool:
    """Whether two names name one person: equal, or one a short form of the other ("Mel",
    "Melanie"), case-insensitively."""
    if not a or not b:
        return False
    x, y = a.lower(), b.lower()
    return x == y or (min(len(x), len(y)) >= 3 and (x.startswith(y) or y.startswith(x)))


def _matches_person(name: str, people: frozenset[str]) -> bool:
    return any(same_person(name, p) for p in people)


def time_scope(question: str, today: datetime) -> TimeScope:
    now = bool(_NOW.search(question))
    past = timeline.asks_about_past(question)
    start = end = None
    mentions = [d for d in dates_.resolve_mentions(question, today)]
    if mentions:
        start, end = mentions[0].start_date, mentions[0].end_date
    before = after = None
    mb = _BEFORE.search(question)
    if mb and not mentions:
        before = mb.group(1)
    ma = _AFTER.search(question)
    if ma and not mentions:
        after = ma.group(1)
    return TimeScope(
        now=now and not past,
        past=past or bool(before),
        start=start,
        end=end,
        before=before,
        after=after,
    )


def analyze(question: str, today: datetime, people: frozenset[str] = frozenset()) -> Question:
    """`people`: lower-cased names the memory knows as speakers or subjects."""
    names = names_in(question)
    subject, is_name = subject_of(question, names, people)
    scope = time_scope(question, today)
    wh = next(
        (
            w.lower()
            for w in _WORD.findall(question)[:3]
            if w.lower() in ("what", "when", "where", "who", "whom", "whose", "which", "why", "how")
        ),
        _WORD.findall(question)[0].lower() if _WORD.findall(question) else "",
    )
    kind = answer_type(question)
    return Question(
        text=question,
        answer_type=kind,
        subject=subject,
        subject_is_name=is_name,
        names=names,
        scope=scope,
        slot=timeline.query_topic(question),
        wh=wh,
        slot_only=bool(timeline.query_topic(question)) and not relevance.specific_terms(question),
        present=bool(
            re.search(r"^\s*(?:\w+\s+){0,3}(?:am|is|are|do|does|has|have)\b", question, re.I)
        ),
        focus=_focus_words(question, subject, scope, today),
        kind_noun=_kind_noun(question),
    )


# Nouns that name the answer's kind after "which"/"what": the answer is an instance of them.
_TYPE_NOUNS = frozenset(
    "city cities country countries town towns place places year years month months day days "
    "date dates time".split()
)


def _kind_noun(question: str) -> str:
    m = re.match(r"\s*(?:which|what)\s+(\w+)", question, re.I)
    return m.group(1).lower() if m and m.group(1).lower() in _TYPE_NOUNS else ""


def _focus_words(
    question: str, subject: str, scope: TimeScope, today: datetime | None = None
) -> tuple[str, ...]:
    """What the question is about, less its subject and the event that only dates it
    ("before Northwind Health" picks the time; the answer does not contain it)."""
    drop = {subject.lower()}
    m = re.search(r"\b(?:my|our)\s+(\w+)\s+" + re.escape(subject) + r"\b", question, re.I)
    if m and m.group(1).lower() in RELATIONS:
        drop.add(m.group(1).lower())  # "my sister Meera": both name the subject
    for anchor in (scope.before, scope.after):
        if anchor:
            drop |= {w.lower() for w in anchor.split()} | {"before", "after"}
    drop |= relevance.GENERIC - {"number"}
    if _kind_noun(question):
        drop.add(
            _kind_noun(question)
        )  # "which cities": any city named is one; the word need not be
    if today is not None:
        # "in June", "last summer" date the question; the memory need not say them.
        for d in dates_.resolve_mentions(question, today):
            drop |= {w.lower() for w in _WORD.findall(question[d.start : d.end])}
    return tuple(w for w in content_words(question) if _strip_possessive(w) not in drop)


def _strip_possessive(word: str) -> str:
    return word[:-2] if word.endswith(("'s", "’s")) else word
