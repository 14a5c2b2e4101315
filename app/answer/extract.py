"""Answer candidates: short spans of the evidence, typed by what the question asks for.

A 135M model asked to write free text from packed memories parrots or invents, so the fact
in an answer is taken from the evidence instead: every candidate is a character span of a
stored memory (or a date resolved from one), scored by how well its sentence matches the
question and how it sits next to the question's own words there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from app.answer.question import Question, content_words
from memory import dates as dates_
from memory.relevance import stem

_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")
_TOKEN = re.compile(r"[\w'’+-]+|[^\w\s]", re.UNICODE)
_BOUNDARY = frozenset(list(".,;:!?()[]\"—–") + ["because", "but", "so", "which", "who", "since", "when", "while", "although", "though", "if"])
_LEAD_DROP = frozenset("a an the to of for about that is are was were be been being it its just really so very also".split())
_PRONOUNS = frozenset("i me my you your we our he she him her his they them their it".split())
_NUMBER_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|a couple of|a few|several"
_DURATION = re.compile(rf"\b(?:for |about |almost |nearly |over |around |roughly )?(?:\d+|{_NUMBER_WORDS}|a|an)\s+(?:years?|months?|weeks?|days?|hours?)(?:\s+(?:now|ago))?", re.I)
_NUMBER = re.compile(rf"\+?\d[\d\s().-]{{5,}}\d|\b\d+(?:[.,]\d+)?\b|\b(?:{_NUMBER_WORDS})\b", re.I)
_CAPS = re.compile(r"\b[A-Z][\w'’-]*(?:\s+(?:de|da|do|van|von|der|of|la|le)?\s*[A-Z0-9][\w'’-]*)*")
_PLACE_PREP = re.compile(r"\b(?:in|at|to|from|near|on|into)\s+((?:the\s+)?[A-Z][\w'’-]*(?:\s+[A-Z0-9][\w'’-]*)*(?:\s+\d+\w?)?)")


@dataclass(frozen=True)
class Sentence:
    memory_id: str
    start: int  # character offsets in the memory's full text
    end: int
    text: str
    when: datetime
    speaker: str | None
    rank: int  # retrieval rank of its memory (0 = best)
    superseded: bool


@dataclass(frozen=True)
class Candidate:
    text: str  # what the answer says
    kind: str
    sentence: Sentence
    start: int  # the span in the memory the candidate rests on
    end: int
    score: float


def sentences(memory_id: str, text: str, when: datetime, speaker: str | None, rank: int,
              superseded: bool) -> list[Sentence]:
    out = []
    for m in _SENTENCE.finditer(text):
        s, e = m.span()
        raw = m.group(0)
        lead = len(raw) - len(raw.lstrip())
        if raw.strip():
            out.append(Sentence(memory_id, s + lead, e, raw.strip(), when, speaker, rank, superseded))
    return out


def _stems(text: str) -> list[str]:
    return [stem(w) for w in content_words(text)]


def _match(a: str, b: str) -> bool:
    return a == b or (len(a) >= 5 and len(b) >= 5 and (a.startswith(b) or b.startswith(a)))


def sentence_score(q: Question, s: Sentence) -> float:
    """Share of the question's focus words the sentence holds, with retrieval rank as a tiebreak."""
    focus = [stem(w) for w in q.focus]
    if not focus:
        return 1.0 / (1 + s.rank)
    have = _stems(s.text)
    hits = sum(1 for f in focus if any(_match(f, h) for h in have))
    score = hits / len(focus) + 0.15 / (1 + s.rank)
    if s.superseded and not q.scope.past:
        score -= 0.3
    return score


def _tokens(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _clip(tokens: list[tuple[str, int, int]], max_words: int = 9) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    for tok in tokens:
        if tok[0].lower() in _BOUNDARY or len(out) >= max_words:
            break
        out.append(tok)
    while out and out[0][0].lower() in _LEAD_DROP:
        out.pop(0)
    while out and out[-1][0].lower() in _LEAD_DROP | {"and", "or", "with", "in", "on", "at", "my"}:
        out.pop()
    return out


def anchored_spans(q: Question, s: Sentence) -> list[tuple[int, int, float]]:
    """Spans next to the question's words in the sentence: what follows the last matched
    focus word (the usual place of the answer), else what precedes the first one."""
    toks = _tokens(s.text)
    focus = [stem(w) for w in q.focus]
    matched = [i for i, (t, _, _) in enumerate(toks) if any(_match(stem(t.lower()), f) for f in focus)]
    spans: list[tuple[int, int, float]] = []
    if not matched:
        return spans
    after = _clip(toks[matched[-1] + 1:])
    # The answer's words are not the question's own words.
    after = [t for t in after] if after else []
    if after and not all(any(_match(stem(t[0].lower()), f) for f in focus) for t in after):
        spans.append((after[0][1], after[-1][2], 1.0))
    before = list(reversed(_clip(list(reversed(toks[:matched[0]])), 6)))
    if before and before[0][0].lower() not in _PRONOUNS:
        spans.append((before[0][1], before[-1][2], 0.5))
    # "What workshop did you attend?": the matched head noun with its modifiers is the answer.
    head = q.focus[0] if q.focus else ""
    for i in matched:
        if stem(toks[i][0].lower()) == stem(head) and q.wh in ("what", "which"):
            j = i
            while j > 0 and toks[j - 1][0].lower() not in _BOUNDARY | _LEAD_DROP | _PRONOUNS and i - j < 4:
                j -= 1
            if j < i:
                spans.append((toks[j][1], toks[i][2], 0.9))
    return spans


def _typed(q: Question, s: Sentence, full_text: str) -> list[tuple[str, int, int, float]]:
    """(answer text, start, end, prior) spans of the answer type inside the sentence."""
    out: list[tuple[str, int, int, float]] = []
    text = s.text
    kind = q.answer_type
    if kind == "date":
        for d in dates_.resolve_mentions(text, s.when):
            out.append((d.render(), d.start, d.end, 1.0))
    elif kind == "duration":
        for m in _DURATION.finditer(text):
            out.append((m.group(0).strip(), m.start(), m.end(), 1.0))
        for span in _computed_durations(text, s.when):
            out.append(span)
    elif kind == "number":
        for m in _NUMBER.finditer(text):
            out.append((m.group(0).strip(), m.start(), m.end(), 1.0))
    elif kind == "place":
        for m in _PLACE_PREP.finditer(text):
            g = m.group(1)
            out.append((g, m.start(1), m.end(1), 1.0))
    elif kind == "person":
        subject = q.subject.lower()
        for m in _CAPS.finditer(text):
            word = m.group(0)
            if m.start() == 0 and word.split()[0].lower() in _PRONOUNS | {"the", "my", "we"}:
                continue
            if word.lower().startswith(subject) or word.split()[0] in ("I", "The", "My"):
                continue
            out.append((word, m.start(), m.end(), 1.0))
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


def candidates(q: Question, sents: Sequence[Sentence], texts: dict[str, str], *,
               top_sentences: int = 4) -> list[Candidate]:
    """Candidates from the best-matching sentences, best first."""
    ranked = sorted(sents, key=lambda s: -sentence_score(q, s))[:top_sentences]
    found: list[Candidate] = []
    for pos, s in enumerate(ranked):
        base = sentence_score(q, s) - 0.05 * pos
        for text, a, b, prior in _typed(q, s, texts.get(s.memory_id, s.text)):
            found.append(Candidate(text, q.answer_type, s, s.start + a, s.start + b, base + prior))
        if q.answer_type in ("description", "list", "place", "person", "number", "yesno") or not found:
            for a, b, prior in anchored_spans(q, s):
                found.append(Candidate(s.text[a:b], "span", s, s.start + a, s.start + b,
                                       base + 0.6 * prior))
    seen: set[str] = set()
    unique: list[Candidate] = []
    for c in sorted(found, key=lambda c: -c.score):
        key = c.text.lower()
        if key not in seen and c.text.strip():
            seen.add(key)
            unique.append(c)
    return unique


def event_day(s: Sentence) -> str:
    return dates_.format_day(s.when.date() if isinstance(s.when, datetime) else s.when)


def today_date(now: datetime) -> date:
    return now.date()
