"""Answer candidates: short spans of the evidence, typed by what the question asks for.

A 135M model asked to write free text from packed memories parrots or invents, so the fact
in an answer is taken from the evidence instead: every candidate is a character span of a
stored memory (or a date resolved from one). A candidate scores by how well its sentence
matches the question, whether its memory holds the asked-about slot now, how close it sits to
the question's own words there, and whether it has the asked-for type; a span made of the
question's own words is not an answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from app.answer.dialogue import about_someone_else, reply_score
from app.answer.question import Question, content_words
from app.answer.sentences import Sentence, coverage, event_day, focus_stems, same_word
from memory import dates as dates_
from memory.relevance import stem

_TOKEN = re.compile(r"[\w'’+@.-]*[\w'’+@-]|[^\w\s]", re.UNICODE)
_PUNCT = frozenset(list('.,;:!?()[]"—–'))
_CLAUSE = frozenset(
    [
        "because",
        "but",
        "so",
        "which",
        "who",
        "since",
        "when",
        "while",
        "although",
        "though",
        "if",
        "and",
    ]
)
_LIST_BOUNDARY = frozenset(
    list('.;!?()[]"—–') + ["because", "but", "so", "which", "who", "since", "when", "while"]
)
_EDGE_DROP = frozenset(
    "a an the to of for about that is are was were be been being it its just really so very also "
    "and or with in on at my our your his her their this".split()
)
_COPULA = frozenset("is are was were am be 's".split())
_PRONOUNS = frozenset("i me my you your we our us he she him her his they them their it".split())
NUMBER_WORDS = (
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
    "hundred"
).split()
_NUMW = "|".join(NUMBER_WORDS + ["a couple of", "a few", "several"])
_DURATION = re.compile(
    rf"\b(?:(?:\d+|{_NUMW}|a|an|half an?)\s+"
    r"(?:years?|months?|weeks?|days?|hours?|minutes?|nights?)"
    rf"(?:\s+(?:and\s+)?(?:\d+|{_NUMW})\s+(?:months?|weeks?|days?|hours?|minutes?))?)(?:\s+ago)?",
    re.I,
)
_PHONE = re.compile(r"\+?\d[\d ().-]{6,}\d")
_NUMBER = re.compile(rf"\d+(?:[.,]\d+)*|\b(?:{_NUMW})\b", re.I)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_ADDRESS = re.compile(
    r"\b\d+[A-Za-z]?\s+(?:[A-Z][\w'’-]*\s*){1,4}"
    r"(?:,\s*[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})?"
    r"(?:,\s*\d{4,5}(?:-\d{3})?)?"
    r"(?:,?\s*[A-Z][\w'’-]+)?"
)
_CAPS = re.compile(
    r"[A-Z][\w'’-]*(?:\s+(?:de|da|do|dos|van|von|der|del|la|le|du|of)?\s*[A-Z0-9][\w'’-]*)*"
)
_PLACE_PREPS = {
    "in": 1.0,
    "at": 1.0,
    "from": 0.5,
    "near": 0.9,
    "to": 0.8,
    "into": 0.8,
    "joined": 0.9,
    "for": 0.7,
    "of": 0.6,
    "on": 0.6,
    "visit": 0.9,
    "visited": 0.9,
}
_ORG_WORDS = frozenset(
    "bio health analytics labs lab ltd inc gmbh group studio studios bank university college "
    "school hospital clinic dental centre center company corp street road lane avenue terrace "
    "loan".split()
)


@dataclass(frozen=True)
class Candidate:
    text: str  # what the answer says
    kind: str
    sentence: Sentence
    start: int  # the span in the memory the candidate rests on
    end: int
    score: float


def sentence_score(q: Question, s: Sentence) -> float:
    # Retrieval order; under a time scope it is the scope's order ("valid then" first).
    score = (
        0.75 * coverage(q, s)
        + 0.25 * coverage(q, s, whole_memory=True)
        + (0.4 if q.scope.bounded else 0.15) / (1 + s.rank)
        + reply_score(q, s)
    )
    if (
        q.subject not in ("user",)
        and not q.subject_is_name
        and re.search(rf"\b{re.escape(q.subject)}", s.text, re.I)
    ):
        score += 0.5  # "my dentist": the sentence that names the dentist
    if q.about_user and s.slot and not s.superseded:
        score += 0.5 if q.slot_only else 0.15  # "where do I live?" is the slot itself
    if q.about_user and about_someone_else(s):
        score -= 0.5
    if not q.scope.past:
        if q.scope.now and s.slot:
            weight = 1.0  # "What is my job title now?": the newest memory holding the slot
        elif q.scope.now or q.slot:
            weight = 0.5
        else:
            weight = 0.3 if q.present else 0.1
        score += weight * s.recency
        if s.superseded and q.slot:
            score -= 0.3
    return score


def tokens(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _trim(toks: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    while toks and toks[0][0].lower() in _EDGE_DROP | _PUNCT:
        toks = toks[1:]
    while toks and toks[-1][0].lower() in _EDGE_DROP | _PUNCT:
        toks = toks[:-1]
    return toks


def _forward(
    toks: list[tuple[str, int, int]], listing: bool, max_words: int = 9
) -> list[tuple[str, int, int]]:
    stop = _LIST_BOUNDARY if listing else _PUNCT | _CLAUSE
    i = 0
    while i < len(toks) and toks[i][0] in (",", ":", "-"):
        i += 1  # "two sons, Leo and Kiran": the list starts after the comma
    out: list[tuple[str, int, int]] = []
    for tok in toks[i:]:
        if tok[0].lower() in stop or len(out) >= max_words:
            break
        out.append(tok)
    return _trim(out)


def _backward(toks: list[tuple[str, int, int]], max_words: int = 5) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    for tok in reversed(toks):
        if tok[0].lower() in _PUNCT | _CLAUSE or len(out) >= max_words:
            break
        out.insert(0, tok)
    return _trim(out)


def matched_words(q: Question, toks: list[tuple[str, int, int]]) -> list[int]:
    focus = focus_stems(q)
    anchors = [
        i for i, (t, _, _) in enumerate(toks) if any(same_word(stem(t.lower()), f) for f in focus)
    ]
    if not q.about_user and not q.subject_is_name:
        anchors += [i for i, (t, _, _) in enumerate(toks) if t.lower().startswith(q.subject)]
    if q.kind_noun:
        kind = stem(q.kind_noun)
        anchors += [i for i, (t, _, _) in enumerate(toks) if same_word(stem(t.lower()), kind)]
    return sorted(set(anchors))


def anchored_spans(q: Question, s: Sentence) -> list[tuple[int, int, float]]:
    """Spans next to the question's words: what follows the last matched word (the usual
    place of the answer), what precedes the first one, and for "what NOUN" questions the
    matched noun with its modifiers."""
    toks = tokens(s.text)
    matched = matched_words(q, toks)
    spans: list[tuple[int, int, float]] = []
    if not matched:
        return spans
    asked = {stem(w) for w in content_words(q.text)}

    def unechoed(span: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
        # "blood type is O negative" -> "O negative": the question's own words and the
        # copula in front of the answer are not part of it.
        while span and (
            stem(span[0][0].lower()) in asked or span[0][0].lower() in _EDGE_DROP | _COPULA
        ):
            span = span[1:]
        while span and stem(span[-1][0].lower()) in asked:
            span = span[:-1]
        return _trim(span)

    after = unechoed(_forward(toks[matched[-1] + 1 :], q.answer_type == "list"))
    if after:
        copula = matched[-1] + 1 < len(toks) and toks[matched[-1] + 1][0].lower() in _COPULA
        spans.append((after[0][1], after[-1][2], 1.2 if copula else 1.0))
    before = unechoed(_backward(toks[: matched[0]]))
    if before and before[0][0].lower() not in _PRONOUNS:
        spans.append((before[0][1], before[-1][2], 0.8))
    head = stem(q.focus[0]) if q.focus else ""
    if q.wh in ("what", "which") and head:
        for i in matched:
            if same_word(stem(toks[i][0].lower()), head):
                mods = _backward(toks[max(0, i - 4) : i], 4)
                if mods:
                    spans.append((mods[0][1], toks[i][2], 1.2))
    return spans


def _proximity(q: Question, s: Sentence, start: int, end: int) -> float:
    """Bonus for a span right after (or right before) a question word in its sentence."""
    toks = tokens(s.text)
    matched = matched_words(q, toks)
    if not matched:
        return 0.0
    first = next((i for i, t in enumerate(toks) if t[1] >= start), len(toks))
    last = next((i for i, t in enumerate(toks) if t[2] >= end), len(toks) - 1)
    best = 0.0
    for i in matched:
        if first <= i <= last:
            continue
        gap = first - i - 1 if i < first else i - last - 1
        weight = 1.0 if i < first else 0.7
        best = max(best, weight * 0.5 / (1 + 0.3 * gap))
    return best


def _echo(q: Question, text: str) -> float:
    """Share of a span's content words that the question itself says."""
    words = content_words(text)
    if not words:
        return 1.0
    asked = {stem(w) for w in content_words(q.text)}
    return sum(1 for w in words if stem(w) in asked) / len(words)


def _date_spans(s: Sentence) -> list[tuple[int, int]]:
    return [(d.start, d.end) for d in dates_.resolve_mentions(s.text, s.when)]


def in_scope(q: Question, start: date, end: date) -> bool:
    """Whether a date range meets the question's own time ("When did I go camping in June?":
    a date in another month is not the answer)."""
    lo, hi = q.scope.start, q.scope.end
    return lo is None or hi is None or (start <= hi and lo <= end)


def _typed(q: Question, s: Sentence) -> list[tuple[str, str, int, int, float]]:
    """(kind, answer text, start, end, prior) spans of the answer's type inside the sentence."""
    out: list[tuple[str, str, int, int, float]] = []
    text, kind, low_q = s.text, q.answer_type, q.text.lower()
    in_dates = _date_spans(s)

    def dated(a: int, b: int) -> bool:
        return any(a < de and ds < b for ds, de in in_dates)

    if kind == "date":
        asked_did = bool(re.search(r"\bdid\b", low_q))
        for d in dates_.resolve_mentions(text, s.when):
            said = (
                str(d.start_date.year)
                if re.search(r"\b(?:what|which) year\b", low_q)
                else d.render()
            )
            prior = 1.0 if in_scope(q, d.start_date, d.end_date) else -0.5
            if asked_did and d.start_date > s.when.date():
                prior -= 0.5  # "going camping next month" was a plan when "did" asks what happened
            out.append(("date", said, d.start, d.end, prior))
    elif kind == "duration":
        for m in _DURATION.finditer(text):
            ago = m.group(0).lower().endswith("ago")
            out.append(
                (
                    "duration",
                    m.group(0).strip(),
                    m.start(),
                    m.end(),
                    1.0 if ago == ("ago" in low_q) else 0.3,
                )
            )
        out += [("duration", *span) for span in _computed_durations(text, s.when)]
    elif kind == "number" or re.search(r"\b(?:phone|mobile|number)\b", low_q):
        for m in _PHONE.finditer(text):
            out.append(("number", m.group(0).strip(), m.start(), m.end(), 1.1))
        counting = bool(re.search(r"\bhow (?:many|much|old|often|far)\b", low_q))
        for m in _NUMBER.finditer(text):
            if (
                (counting or m.group(0)[0].isdigit())
                and not dated(m.start(), m.end())
                and not any(p.start() <= m.start() < p.end() for p in _PHONE.finditer(text))
            ):
                out.append(("number", m.group(0).strip(), m.start(), m.end(), 1.0))
    if "email" in low_q or "e-mail" in low_q:
        out += [("email", m.group(0), m.start(), m.end(), 1.3) for m in _EMAIL.finditer(text)]
    if kind == "place" or "address" in low_q:
        for m in _ADDRESS.finditer(text):
            out.append(
                (
                    "place",
                    m.group(0).strip(" ,"),
                    m.start(),
                    m.end(),
                    1.0 if "address" in low_q else 0.8,
                )
            )
    if kind == "place":
        asked_preps = {w for w in low_q.split() if w in _PLACE_PREPS}
        for m in _CAPS.finditer(text):
            prev = (text[: m.start()].split()[-1:] or [""])[0].lower()
            weight = 1.1 if prev in asked_preps else _PLACE_PREPS.get(prev)
            if weight is not None and not dated(m.start(), m.end()):
                out.append(("place", m.group(0), m.start(), m.end(), weight))
    elif kind == "person":
        for m in _CAPS.finditer(text):
            words = m.group(0).split()
            if m.start() == 0 and len(words) == 1 and s.speaker is None:
                continue  # a sentence's first word is capitalised whatever it is
            if words[0] in ("I", "The", "My", "We", "Our") or dated(m.start(), m.end()):
                continue
            org = any(w.lower() in _ORG_WORDS for w in words)
            out.append(("person", m.group(0), m.start(), m.end(), 0.4 if org else 1.0))
    if re.search(r"\b(?:title|role|position|job)\b", low_q):
        for m in re.finditer(r"\bas (?:an? |the )?((?:[a-z]+ ){0,4}[a-z]+)", text):
            out.append(("title", m.group(1), m.start(1), m.end(1), 1.2))
    return out


_RANGE = re.compile(r"\bfrom\s+((?:19|20)\d{2})\s+(?:to|until|till|-)\s+((?:19|20)\d{2})\b", re.I)
_SINCE = re.compile(r"\bsince\s+((?:19|20)\d{2})\b", re.I)


def _computed_durations(text: str, when: datetime) -> list[tuple[str, int, int, float]]:
    """Durations the text implies but does not state ("from 2019 to 2024" -> 5 years)."""
    out: list[tuple[str, int, int, float]] = []
    for m in _RANGE.finditer(text):
        years = int(m.group(2)) - int(m.group(1))
        out.append((f"{years} year{'s' if years != 1 else ''}", m.start(), m.end(), 1.1))
    for m in _SINCE.finditer(text):
        years = when.year - int(m.group(1))
        if years > 0:
            out.append((f"{years} year{'s' if years != 1 else ''}", m.start(), m.end(), 0.9))
    return out


_SHAPE = {
    "number": re.compile(rf"\d|\b(?:{_NUMW})\b", re.I),
    "place": re.compile(r"[A-Z]"),
    "person": re.compile(r"[A-Z]"),
}


_LEFT_BEHIND = re.compile(
    r"\b(?:left|quit|no longer (?:at|in|with)|moved (?:away )?from"
    r"|used to (?:work|live) (?:at|in|for))\s+"
    r"((?:the\s+)?[A-Z][\w'’-]*(?:\s+[A-Z0-9][\w'’-]*)*)"
)


def left_behind(sents: Sequence[Sentence]) -> set[str]:
    """Values the evidence says were left ("I left Northwind Health and joined ..."): never
    the answer to a question about now."""
    return {m.group(1).lower() for s in sents for m in _LEFT_BEHIND.finditer(s.text)}


def candidates(
    q: Question, sents: Sequence[Sentence], *, top_sentences: int = 4
) -> list[Candidate]:
    """Candidates from the best-matching sentences, best first."""
    ranked = sorted(sents, key=lambda s: -sentence_score(q, s))[:top_sentences]
    old = left_behind(sents) if not q.scope.past else set()
    found: list[Candidate] = []
    for pos, s in enumerate(ranked):
        base = 1.5 * sentence_score(q, s) - 0.05 * pos  # the sentence's match dominates
        typed = _typed(q, s)
        for kind, text, a, b, prior in typed:
            if kind != "date" and _echo(q, text) >= 1.0:
                continue  # "Maria" is not the answer to a question about Maria
            score = base + prior + _proximity(q, s, a, b) - _echo(q, text)
            found.append(Candidate(text, kind, s, s.start + a, s.start + b, score))
        shape = _SHAPE.get(q.answer_type)
        dated = _date_spans(s)
        for a, b, prior in anchored_spans(q, s):
            text = s.text[a:b]
            if (shape is not None and not shape.search(text)) or _echo(q, text) >= 1.0:
                continue
            only_time = any(ds <= a and b <= de for ds, de in dated) and q.answer_type != "date"
            weight = 1.0 if shape is not None else 0.6  # a typed span next to the question's words
            score = base + weight * prior - _echo(q, text) - (0.6 if only_time else 0.0)
            found.append(
                Candidate(
                    text,
                    q.answer_type if shape is not None else "span",
                    s,
                    s.start + a,
                    s.start + b,
                    score,
                )
            )
        if q.answer_type == "date":
            # A "when" whose sentence names no date: the memory's own date answers it.
            year = re.search(r"\b(?:what|which) year\b", q.text, re.I)
            said = str(s.when.year) if year else event_day(s)
            day = s.when.date()
            prior = 0.9 if in_scope(q, day, day) else -0.6
            found.append(Candidate(said, "date", s, s.start, s.end, base + prior))
    if old:
        found = [
            Candidate(c.text, c.kind, c.sentence, c.start, c.end, c.score - 1.5)
            if c.text.lower() in old
            else c
            for c in found
        ]
    seen: set[str] = set()
    unique: list[Candidate] = []
    for c in sorted(found, key=lambda c: -c.score):
        key = c.text.lower()
        if key not in seen and c.text.strip():
            seen.add(key)
            unique.append(c)
    return unique
