"""Query understanding for retrieval: content terms, named speakers, time constraints.

- Terms: what the keyword ranking may use. Function words, pronouns and time fillers ("now",
  "current", "my", "I", question words; a few languages) never reach BM25: "Where do I live
  now?" must rank notes about living somewhere, not notes that say "now".
- Speakers: names in the query that are speakers of stored chat turns ("What did Ana say
  about ...", "Ana's job") boost that speaker's turns. A name is matched on the whole speaker
  name or its first word, case-insensitively.
- Semantic text: the query the embedding model sees drops the named speakers' names (the
  speaker boost handles them; in the vector they pull towards turns that merely address them).
- Time: "in May 2023", "in 2023", "last summer", "last month", "yesterday" become an event-time
  window; "before/after I <did something>" becomes a window bounded by that event's time, which
  the caller finds with a keyword lookup (see `event_phrase`).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

_WORD = re.compile(r"\w+", re.UNICODE)

# Words that carry no topic. English plus the commonest function words of de/fr/es/pt/it/nl.
STOPWORDS = frozenset(
    """
a an and are as at be been being by can could did do does doing done for from had has have having
how i i'm i've in into is it its it's me my mine myself of on or our ours ourselves that the their
theirs them themselves then there these they this those to was we were what when where which while
who whom whose why will with would you your yours yourself yourselves am about than should shall may
might must s t d ll m re ve not no nor so too very just also any some such each both all most more
other same own now current currently today recently recent lately still anymore ever yet again
present presently please tell know remember say said think thing things one ones get got like us he
him his she her hers
ich du er sie es wir ihr mein meine meinen meinem meiner dein deine ist sind war waren bin bist hat
habe haben wo wie was wer wann warum der die das den dem des ein eine einen einem und oder aber
nicht jetzt aktuell gerade zu im am vom zum zur mit von bei für auf aus nach
ce ceci cela ça je tu il elle nous vous ils elles mon ma mes ton ta tes son sa ses est sont suis
être où quand comment quoi qui que quel quelle le la les un une des du et ou mais pas maintenant
actuellement de en au aux
yo tú él ella nosotros mi mis tu tus su sus es son soy estoy está dónde donde cuándo cuando cómo
como qué que quién el los las una unos unas y o pero ahora actualmente del al
eu ele ela nós meu minha meus minhas teu tua seu sua é são sou estou onde quando como o os um uma e
ou mas agora atualmente atual qual quais do da dos das no na nos nas em ao aktuelle aktuellen actuel
actuelle
""".split()
)

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_IN_MONTH_YEAR = re.compile(
    rf"\b(?:in|during|of|on)?\s*(?P<m>{_MONTH_RE})\.?,?\s+(?P<y>(?:19|20)\d\d)\b", re.I
)
_IN_YEAR = re.compile(r"\b(?:in|during|of|back in)\s+(?P<y>(?:19|20)\d\d)\b", re.I)
_LAST = re.compile(
    r"\b(?P<w>last|this|past)\s+(?P<u>summer|winter|spring|autumn|fall|year|month|week|weekend)\b",
    re.I,
)
_DAYS_AGO = re.compile(r"\b(?P<w>yesterday|today|tonight)\b", re.I)
_BEFORE_AFTER = re.compile(
    r"\b(?P<rel>before|after|since)\s+(?:i|we)\s+(?P<event>(?:\w+\s*){1,5})", re.I
)
_SEASONS = {
    "spring": (3, 5),
    "summer": (6, 8),
    "autumn": (9, 11),
    "fall": (9, 11),
    "winter": (12, 2),
}


@dataclass(frozen=True)
class TimeWindow:
    start: datetime | None
    end: datetime | None

    def contains(self, when: datetime) -> bool:
        return (self.start is None or when >= self.start) and (self.end is None or when < self.end)


@dataclass
class QueryPlan:
    text: str
    terms: list[str]
    speakers: list[str] = field(default_factory=list)
    # What the embedding model sees: the query without the speakers' names (see `semantic_text`).
    semantic: str | None = None
    window: TimeWindow | None = None
    event_phrase: str | None = None  # "before I moved": the event whose time bounds the window
    event_relation: str | None = None  # "before" | "after"


def content_terms(query: str, drop: Iterable[str] = ()) -> list[str]:
    dropped = {d.lower() for d in drop}
    words = [w.lower() for w in _WORD.findall(query)]
    keep = [
        w for w in words if w not in STOPWORDS and w not in dropped and (len(w) > 1 or w.isdigit())
    ]
    return list(dict.fromkeys(keep))


def match_speakers(query: str, speakers: Iterable[str]) -> list[str]:
    """Known speakers the query names (whole name, or its first word of >= 3 letters)."""
    words = {w.lower() for w in _WORD.findall(query)}
    low = query.lower()
    out = []
    for sp in speakers:
        name = sp.strip()
        if not name:
            continue
        first = _WORD.findall(name.lower())
        if not first:
            continue
        whole = re.search(rf"(?<!\w){re.escape(name.lower())}(?!\w)", low) is not None
        if whole or (len(first[0]) >= 3 and first[0] in words and first[0] not in STOPWORDS):
            out.append(sp)
    return out


def semantic_text(query: str, speakers: Iterable[str]) -> str:
    """The query without the names of the speakers it names, for the embedding model.

    The speaker boost already prefers a named speaker's turns; left in the text, a name pulls
    the query vector towards every turn that mentions or addresses that person ("Thanks, Ana!")
    instead of the turns about what was asked. Falls back to the query when nothing is left.
    """
    out = query
    for sp in speakers:
        words = _WORD.findall(sp)
        for name in dict.fromkeys([sp.strip(), *(w for w in words[:1] if len(w) >= 3)]):
            if name:
                out = re.sub(rf"(?<!\w){re.escape(name)}(?:'s|’s|s')?(?!\w)", " ", out, flags=re.I)
    out = " ".join(out.split())
    return out if content_terms(out) else query


def _month_window(year: int, month: int) -> TimeWindow:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return TimeWindow(start, end)


def _season(year: int, season: str) -> TimeWindow:
    a, b = _SEASONS[season]
    start = datetime(year, a, 1, tzinfo=UTC)
    end_year = year + 1 if b < a else year
    return TimeWindow(start, _month_window(end_year, b).end)


def time_window(query: str, now: datetime) -> TimeWindow | None:
    """An event-time window the query asks about, or None."""
    found = _time_window_span(query, now)
    return found[0] if found else None


def _time_window_span(query: str, now: datetime) -> tuple[TimeWindow, tuple[int, int]] | None:
    for pattern in (_IN_MONTH_YEAR, _IN_YEAR, _LAST, _DAYS_AGO):
        m = pattern.search(query)
        if m:
            window = _window_of(m, pattern, now)
            return (window, m.span()) if window else None
    return None


def _window_of(m: re.Match[str], pattern: re.Pattern[str], now: datetime) -> TimeWindow | None:
    if pattern is _IN_MONTH_YEAR:
        return _month_window(int(m.group("y")), _MONTHS[m.group("m").lower()])
    if pattern is _IN_YEAR:
        y = int(m.group("y"))
        return TimeWindow(datetime(y, 1, 1, tzinfo=UTC), datetime(y + 1, 1, 1, tzinfo=UTC))
    if pattern is _LAST:
        which, unit = m.group("w").lower(), m.group("u").lower()
        if unit in _SEASONS:
            if which == "this":
                return _season(now.year, unit)
            # "last summer": the latest one that is over
            return next(
                w
                for y in (now.year, now.year - 1, now.year - 2)
                if (w := _season(y, unit)).end is not None and w.end <= now
            )
        if unit == "year":
            y = now.year - (which != "this")
            return TimeWindow(datetime(y, 1, 1, tzinfo=UTC), datetime(y + 1, 1, 1, tzinfo=UTC))
        if unit == "month":
            if which == "this":
                return _month_window(now.year, now.month)
            prev = now.replace(day=1) - timedelta(days=1)
            return _month_window(prev.year, prev.month)
        days = 7 if unit == "week" else 3
        return TimeWindow(now - timedelta(days=days * (1 if which == "this" else 2)), now)
    if pattern is _DAYS_AGO:
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if m.group("w").lower() == "yesterday":
            day -= timedelta(days=1)
        return TimeWindow(day, day + timedelta(days=1))
    return None


def _mentioned(query: str, now: datetime) -> tuple[TimeWindow, tuple[int, int]] | None:
    """The first time expression memory.dates resolves ("two weeks ago", "on 7 May 2023")."""
    from memory.dates import resolve_mentions

    for m in resolve_mentions(query, now):
        start = datetime(m.start_date.year, m.start_date.month, m.start_date.day, tzinfo=UTC)
        last = m.end_date
        end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
        return TimeWindow(start, end), (m.start, m.end)
    return None


def analyze(query: str, speakers: Iterable[str] = (), now: datetime | None = None) -> QueryPlan:
    now = now or datetime.now(UTC)
    named = match_speakers(query, speakers)
    name_words = {w for sp in named for w in _WORD.findall(sp.lower())}
    found = _mentioned(query, now) or _time_window_span(query, now)
    window = found[0] if found else None
    # The time expression is matched by event time, not by its words ("two weeks ago").
    rest = query[: found[1][0]] + " " + query[found[1][1] :] if found else query
    terms = (
        content_terms(rest, drop=name_words)
        or content_terms(query, drop=name_words)
        or content_terms(query)
    )
    plan = QueryPlan(
        text=query,
        terms=terms,
        speakers=named,
        window=window,
        semantic=semantic_text(query, named) if named else None,
    )
    m = _BEFORE_AFTER.search(query)
    if m and plan.window is None:
        event = " ".join(content_terms(m.group("event")))
        if event:
            plan.event_phrase, plan.event_relation = (
                event,
                "after" if m.group("rel").lower() != "before" else "before",
            )
    return plan
