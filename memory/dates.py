"""Time expressions inside text, resolved against an anchor (the memory's own event time).

"I went to the support group yesterday", written on 8 May 2023, happened on 7 May 2023: the
anchor is the memory's event time, never today. Questions resolve against today the same way.
Each mention keeps its character span, so answers can quote it and retrieval can match the
resolved date. Vague expressions keep their vagueness: "last week" is a week-long range and
renders as "the week before 9 June 2023", not as an invented day.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
MONTHS["sept"] = 9
WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "a couple of": 2,
    "a couple": 2,
    "couple of": 2,
    "a few": 3,
    "few": 3,
    "several": 3,
}
# Northern-hemisphere meteorological seasons: (first month, length in months).
SEASONS = {"spring": (3, 3), "summer": (6, 3), "autumn": (9, 3), "fall": (9, 3), "winter": (12, 3)}


@dataclass(frozen=True)
class DateMention:
    """One time expression: its span in the text and the inclusive date range it denotes."""

    start: int
    end: int
    text: str
    start_date: date
    end_date: date
    granularity: str  # day | week | weekend | month | season | year | approx
    relative: bool  # resolved from the anchor ("yesterday"), not written out ("7 May 2023")
    anchor: date | None = None

    def render(self) -> str:
        """How an answer says it: a day, or the range in words when the text was vague."""
        return render_range(
            self.start_date, self.end_date, self.granularity, self.anchor, self.text
        )

    def to_json(self) -> dict[str, object]:
        return {
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "granularity": self.granularity,
            "relative": self.relative,
            "render": self.render(),
        }


def format_day(d: date) -> str:
    return f"{d.day} {calendar.month_name[d.month]} {d.year}"


def render_range(
    start: date, end: date, granularity: str, anchor: date | None = None, text: str = ""
) -> str:
    low = text.lower()
    if granularity == "day":
        day = format_day(start)
        named = next((w for w in WEEKDAYS if w in low), None)
        return f"{calendar.day_name[start.weekday()]}, {day}" if named else day
    if granularity in ("week", "weekend") and anchor is not None:
        unit = "weekend" if granularity == "weekend" else "week"
        if end < anchor:
            return f"the {unit} before {format_day(anchor)}"
        if start > anchor:
            return f"the {unit} after {format_day(anchor)}"
        return f"the {unit} of {format_day(anchor)}"
    if granularity == "approx":
        return f"around {format_day(start)}"
    if granularity == "month":
        return f"{calendar.month_name[start.month]} {start.year}"
    if granularity == "season":
        name = next((s for s in SEASONS if s in low), _season_of(start.month))
        return f"{name} {start.year}"
    if granularity == "year":
        return str(start.year)
    return format_day(start) if start == end else f"{format_day(start)} to {format_day(end)}"


def _season_of(month: int) -> str:
    return {
        12: "winter",
        1: "winter",
        2: "winter",
        3: "spring",
        4: "spring",
        5: "spring",
        6: "summer",
        7: "summer",
        8: "summer",
    }.get(month, "autumn")


def _month_range(year: int, month: int, months: int = 1) -> tuple[date, date]:
    start = date(year, month, 1)
    y, m = divmod(month - 1 + months, 12)
    return start, date(year + y, m + 1, 1) - timedelta(days=1)


def _shift_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _season_range(name: str, anchor: date, which: str) -> tuple[date, date]:
    first, length = SEASONS[name]
    # The season's occurrence whose year contains the anchor (winter starts in December).
    year = anchor.year - (1 if first == 12 and anchor.month < 3 else 0)
    start, end = _month_range(year, first, length)
    if which == "last" and end >= anchor:
        start, end = _month_range(year - 1, first, length)
    elif which == "next" and start <= anchor:
        start, end = _month_range(year + 1, first, length)
    return start, end


_NUM = (
    r"(?:\d+|a couple of|a couple|couple of|a few|few|several|an?|one|two|three|four|five|six"
    r"|seven|eight|nine|ten|eleven|twelve)"
)
_UNIT = r"(?:day|week|month|year|weekend)s?"
_WD = "|".join(WEEKDAYS)
_MON = "|".join(sorted(MONTHS, key=len, reverse=True))
_SEASON = "|".join(SEASONS)

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")),
    (
        "dmy",
        re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MON})\.?,?\s+(\d{{4}})\b", re.I),
    ),
    ("mdy", re.compile(rf"\b({_MON})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)),
    ("my", re.compile(rf"\b({_MON})\.?,?\s+(?:of\s+)?(\d{{4}})\b", re.I)),
    ("day_before_yesterday", re.compile(r"\bthe day before yesterday\b", re.I)),
    ("day_after_tomorrow", re.compile(r"\bthe day after tomorrow\b", re.I)),
    ("yesterday", re.compile(r"\b(?:yesterday|last night)\b", re.I)),
    ("today", re.compile(r"\b(?:today|tonight|this (?:morning|afternoon|evening))\b", re.I)),
    ("tomorrow", re.compile(r"\btomorrow\b", re.I)),
    ("ago", re.compile(rf"\b({_NUM})\s+({_UNIT})\s+ago\b", re.I)),
    ("in_n", re.compile(rf"\bin\s+({_NUM})\s+({_UNIT})(?!\s+ago)\b", re.I)),
    ("rel_weekday", re.compile(rf"\b(last|this past|this|next|coming)\s+({_WD})\b", re.I)),
    ("on_weekday", re.compile(rf"\bon\s+({_WD})\b(?!s)", re.I)),
    (
        "rel_unit",
        re.compile(r"\b(last|this past|past|this|next|coming)\s+(week|weekend|month|year)\b", re.I),
    ),
    ("rel_season", re.compile(rf"\b(last|this past|this|next|coming)\s+({_SEASON})\b", re.I)),
    ("earlier_this", re.compile(r"\b(earlier|later) this (week|month|year)\b", re.I)),
    (
        "in_month",
        re.compile(
            rf"\b(?:in|since|during|last|this|next)\s+({_MON})\b(?!\.?,?\s+(?:of\s+)?\d)", re.I
        ),
    ),
    (
        "year",
        re.compile(
            r"\b(?:in|since|from|during|of|until|till|by|back in)\s+((?:19|20)\d{2})\b", re.I
        ),
    ),
]


def _number(word: str) -> int:
    w = word.lower()
    return int(w) if w.isdigit() else NUMBERS.get(w, 1)


def _resolve(kind: str, m: re.Match[str], anchor: date) -> tuple[date, date, str, bool] | None:
    g = m.groups()
    if kind == "iso":
        d = date(int(g[0]), int(g[1]), int(g[2]))
        return d, d, "day", False
    if kind in ("dmy", "mdy"):
        day, mon, year = (g[0], g[1], g[2]) if kind == "dmy" else (g[1], g[0], g[2])
        d = date(int(year), MONTHS[mon.lower()], int(day))
        return d, d, "day", False
    if kind == "my":
        return (*_month_range(int(g[1]), MONTHS[g[0].lower()]), "month", False)
    offsets = {
        "day_before_yesterday": -2,
        "yesterday": -1,
        "today": 0,
        "tomorrow": 1,
        "day_after_tomorrow": 2,
    }
    if kind in offsets:
        d = anchor + timedelta(days=offsets[kind])
        return d, d, "day", True
    if kind in ("ago", "in_n"):
        n = _number(g[0]) * (-1 if kind == "ago" else 1)
        unit = g[1].lower().rstrip("s")
        fuzzy = g[0].lower() in ("a few", "few", "several", "a couple of", "a couple", "couple of")
        if unit == "day":
            d = anchor + timedelta(days=n)
            return d, d, "approx" if fuzzy else "day", True
        if unit in ("week", "weekend"):
            d = anchor + timedelta(weeks=n)
            return d, d, "approx", True
        if unit == "month":
            d = _shift_months(anchor, n)
            return (*_month_range(d.year, d.month), "month", True)
        return date(anchor.year + n, 1, 1), date(anchor.year + n, 12, 31), "year", True
    if kind == "rel_weekday":
        which, wd = g[0].lower(), WEEKDAYS[g[1].lower()]
        delta = (anchor.weekday() - wd) % 7
        if which in ("last", "this past"):
            d = anchor - timedelta(days=delta or 7)
        elif which in ("next", "coming"):
            d = anchor + timedelta(days=((wd - anchor.weekday()) % 7) or 7)
        else:  # "this Friday": the one in the anchor's week
            d = anchor + timedelta(days=wd - anchor.weekday())
        return d, d, "day", True
    if kind == "on_weekday":
        # A bare "on Tuesday" in a note is the latest Tuesday up to the day it was written.
        d = anchor - timedelta(days=(anchor.weekday() - WEEKDAYS[g[0].lower()]) % 7)
        return d, d, "day", True
    if kind == "rel_unit":
        which, unit = g[0].lower(), g[1].lower()
        step = {"last": -1, "this past": -1, "past": -1, "next": 1, "coming": 1}.get(which, 0)
        if unit == "week":
            monday = anchor - timedelta(days=anchor.weekday()) + timedelta(weeks=step)
            return monday, monday + timedelta(days=6), "week", True
        if unit == "weekend":
            saturday = anchor + timedelta(days=5 - anchor.weekday())
            if step < 0 or (step == 0 and saturday > anchor and which == "this past"):
                saturday -= timedelta(weeks=1)
            elif step > 0 and anchor.weekday() >= 5:
                saturday += timedelta(weeks=1)
            return saturday, saturday + timedelta(days=1), "weekend", True
        if unit == "month":
            d = _shift_months(anchor.replace(day=1), step)
            return (*_month_range(d.year, d.month), "month", True)
        y = anchor.year + step
        return date(y, 1, 1), date(y, 12, 31), "year", True
    if kind == "rel_season":
        which = {"this past": "last", "coming": "next"}.get(g[0].lower(), g[0].lower())
        return (*_season_range(g[1].lower(), anchor, which), "season", True)
    if kind == "earlier_this":
        unit = g[1].lower()
        if unit == "week":
            monday = anchor - timedelta(days=anchor.weekday())
            return monday, monday + timedelta(days=6), "week", True
        if unit == "month":
            return (*_month_range(anchor.year, anchor.month), "month", True)
        return date(anchor.year, 1, 1), date(anchor.year, 12, 31), "year", True
    if kind == "in_month":
        word = m.group(0).split()[0].lower()
        month = MONTHS[g[0].lower()]
        year = anchor.year
        if word == "last":
            year -= 1 if month >= anchor.month else 0
        elif word == "next":
            year += 1 if month <= anchor.month else 0
        elif month - anchor.month > 6:
            year -= 1  # the nearest occurrence: "in December" written in May is last December
        elif anchor.month - month > 6:
            year += 1
        return (*_month_range(year, month), "month", True)
    if kind == "year":
        y = int(g[0])
        return date(y, 1, 1), date(y, 12, 31), "year", False
    return None


def _ambiguous_month(word: str) -> bool:
    # "may" and "march" are also a verb: only the capitalised word is the month.
    return word.lower() in ("may", "march") and not word[:1].isupper()


def resolve_mentions(text: str, anchor: datetime | date) -> list[DateMention]:
    """Every time expression in `text`, resolved against `anchor`, in text order.

    Overlapping matches keep the earliest-listed (most specific) pattern; malformed dates
    ("31 February 2023") are skipped, never raised.
    """
    day = anchor.date() if isinstance(anchor, datetime) else anchor
    taken: list[tuple[int, int]] = []
    found: list[DateMention] = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            s, e = m.span()
            if any(s < te and ts < e for ts, te in taken):
                continue
            if kind in ("in_month", "my") and _ambiguous_month(m.group(1)):
                continue
            try:
                resolved = _resolve(kind, m, day)
            except (ValueError, OverflowError):
                continue
            if resolved is None:
                continue
            start, end, gran, rel = resolved
            taken.append((s, e))
            found.append(DateMention(s, e, m.group(0), start, end, gran, rel, day if rel else None))
    return sorted(found, key=lambda d: d.start)
