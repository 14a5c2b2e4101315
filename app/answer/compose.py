"""Turning prepared evidence into the sentence the user reads, three ways.

- `extract` (default): the best-scored candidate span, said in a short frame; no model call.
- `constrained`: the model picks among the top candidates under a per-question GBNF grammar
  (it can only copy a candidate), sharing one prompt of the evidence.
- `generate`: the model writes freely; the reply is verified against the cited memories and
  replaced by the best supporting quote when its content is not there.

Every strategy ends in a Draft whose evidence spans point into the cited memories. A
candidate that does not clear the bar never becomes a confident sentence: the best
supporting sentence is quoted with its date instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from app.answer import extract, sentences
from app.answer.prepare import ABSTAIN_ANSWER
from app.answer.question import content_words
from app.answer.types import AnswerStream, Draft, EvidenceSpan, PreparedAnswer
from app.errors import MemexError
from inference.base import ChatMessage, GenerationParams
from memory import dates as dates_
from memory.relevance import stem

if TYPE_CHECKING:
    from app.answer.extract import Candidate
    from app.answer.sentences import Sentence

MIN_CANDIDATE = 0.45  # below this a candidate's sentence shares too little with the question
MIN_YES = 0.6
MAX_QUOTE_WORDS = 28
CHOICES = 5
_NEGATION = re.compile(
    r"\b(?:not|never|no|n't|didn't|don't|doesn't|wasn't|weren't|haven't|hasn't)\b", re.I
)


class Generator(Protocol):
    def stream(self, messages: list[ChatMessage], params: GenerationParams) -> Iterator[str]: ...


def _speaker_frame(s: Sentence) -> str:
    who = s.speaker or "you"
    verb = "said" if s.speaker else "wrote"
    return f"On {sentences.event_day(s)} {who} {verb}"


def quote_of(s: Sentence) -> str:
    words = s.text.split()
    text = " ".join(words[:MAX_QUOTE_WORDS]) + (" …" if len(words) > MAX_QUOTE_WORDS else "")
    return f"{_speaker_frame(s)}: \u201c{text}\u201d"


def _span(s: Sentence) -> EvidenceSpan:
    return EvidenceSpan(s.memory_id, s.start, s.end)


def fallback(prepared: PreparedAnswer, strategy: str, verified: bool = True) -> Draft:
    """The best supporting sentence, quoted with its date: never a confident wrong sentence."""
    if not prepared.evidence:
        return Draft(ABSTAIN_ANSWER, strategy=strategy, abstained=True)
    s = prepared.evidence[0]
    quote = quote_of(s)
    return Draft(quote, (_span(s),), quote, strategy, verified)


def _say(c: Candidate) -> str:
    text = c.text.strip().rstrip(".,;:")
    return text[:1].upper() + text[1:]


def _draft(prepared: PreparedAnswer, c: Candidate, strategy: str) -> Draft:
    spans: tuple[EvidenceSpan, ...] = (EvidenceSpan(c.sentence.memory_id, c.start, c.end),)
    if (c.sentence.start, c.sentence.end) != (c.start, c.end):
        spans += (_span(c.sentence),)
    return Draft(_say(c), spans, quote_of(c.sentence), strategy)


def _yes_no(prepared: PreparedAnswer, strategy: str) -> Draft:
    q = prepared.analysis
    assert q is not None
    s = prepared.evidence[0]
    if extract.sentence_score(q, s) < MIN_YES:
        return fallback(prepared, strategy)
    if q.scope.now or q.present:
        # "Am I still ...?": the newest sentence that holds the question decides.
        holding = [e for e in prepared.evidence[:4] if sentences.coverage(q, e) >= 0.5]
        s = max(holding or [s], key=lambda e: e.when)
    answer = "No" if _NEGATION.search(s.text) and not _NEGATION.search(q.text) else "Yes"
    return Draft(answer, (_span(s),), quote_of(s), strategy)


def _list(prepared: PreparedAnswer, strategy: str) -> Draft | None:
    """One item per supporting memory, best first (several memories, several items)."""
    chosen: list[Candidate] = []
    for c in prepared.candidates:
        if c.score < MIN_CANDIDATE:
            break
        if all(c.sentence.memory_id != o.sentence.memory_id for o in chosen) and len(chosen) < 4:
            chosen.append(c)
    if not chosen:
        return None
    spans = tuple(EvidenceSpan(c.sentence.memory_id, c.start, c.end) for c in chosen)
    return Draft(", ".join(_say(c) for c in chosen), spans, quote_of(chosen[0].sentence), strategy)


def _event_date(prepared: PreparedAnswer, strategy: str) -> Draft:
    """A "when" question whose evidence names no date: the memory's own date answers it."""
    s = prepared.evidence[0]
    q = prepared.analysis
    year = q is not None and re.search(r"\b(?:what|which) year\b", q.text, re.I)
    day = str(s.when.year) if year else sentences.event_day(s)
    return Draft(day, (_span(s),), quote_of(s), strategy)


def compose_extractive(
    prepared: PreparedAnswer,
    strategy: str = "extract",
    choose: Callable[[list[Candidate]], Candidate | None] | None = None,
) -> Draft:
    if prepared.abstain:
        return Draft(ABSTAIN_ANSWER, strategy=strategy, abstained=True)
    q = prepared.analysis
    assert q is not None
    if not prepared.evidence:
        return fallback(prepared, strategy)
    if q.answer_type == "yesno":
        return _yes_no(prepared, strategy)
    if q.answer_type == "list":
        listed = _list(prepared, strategy)
        if listed is not None:
            return listed
    good = [c for c in prepared.candidates if c.score >= MIN_CANDIDATE]
    typed = [c for c in good if c.kind == q.answer_type]
    pool = typed or good
    if not pool:
        if (
            q.answer_type == "date"
            and extract.sentence_score(q, prepared.evidence[0]) >= MIN_CANDIDATE
        ):
            return _event_date(prepared, strategy)
        top = prepared.evidence[0]
        if top.speaker is not None and q.answer_type in ("description", "list"):
            return _clause(prepared, top, strategy)
        return fallback(prepared, strategy)
    best = choose(pool[:CHOICES]) if choose is not None and len(pool) > 1 else pool[0]
    best = best or pool[0]
    if (
        best.kind == "span"
        and best.sentence.speaker is not None
        and q.answer_type in ("description", "list")
    ):
        # A conversational turn says its answer in passing; an untyped span cut from it is a
        # guess, its clause is what was said.
        return _clause(prepared, best.sentence, strategy)
    return _draft(prepared, best, strategy)


_INTERJECTION = re.compile(
    r"^(?:(?:hey|hi|hello|wow|yeah|yes|oh|ah|aw+|omg|thanks|thank you|haha|lol|sure|cool|great"
    r"|awesome|nice|totally|absolutely|definitely|really|so|well|ok|okay)"
    r"\b[^,.!?]{0,20}[,.!?]+\s*)+",
    re.I,
)


_BOUNDARY = frozenset(
    ", ; : - — – which who but so because while though although since until".split()
)
_AND_CLAUSE = re.compile(r"^(?:i|we|it|he|she|they|you|\w+ing)$", re.I)


def _clause_end(prepared: PreparedAnswer, s: Sentence, skip: int) -> int:
    """Where the clause that holds the answer ends: the first clause boundary after the
    question's words ("I'm after Marley flooring, which is what studios use" -> "... flooring")."""
    q = prepared.analysis
    toks = extract.tokens(s.text[skip:])
    matched = extract.matched_words(q, toks) if q is not None else []
    # The clause ends after the asked-for thing ("what kind of flooring": "flooring"), else
    # after the last of the question's words.
    head = stem(q.focus[0]) if q is not None and q.focus else ""
    at_head = [i for i in matched if head and sentences.same_word(head, stem(toks[i][0].lower()))]
    last = at_head[0] if at_head else matched[-1] if matched else -2
    first = max(last + 2, 3)
    for i in range(first, len(toks)):
        word = toks[i][0].lower()
        nxt = toks[i + 1][0] if i + 1 < len(toks) else ""
        if word in _BOUNDARY or (word == "and" and _AND_CLAUSE.match(nxt)):
            return skip + toks[i][1]
    return len(s.text)


_ASKS_REASON = re.compile(r"^\s*why\b|\bfor\s*\?\s*$|\bwhat (?:for|made|motivated)\b", re.I)
_REASON = re.compile(
    r"\b(?:because|'cause|cause|since|so that"
    r"|to (?!the\b|a\b|an\b|my\b|her\b|his\b)(?-i:[a-z])\w+)",
    re.I,
)


def _reason_start(prepared: PreparedAnswer, s: Sentence, skip: int) -> int | None:
    """For "why ...?" and "what ... for?": where the clause's reason starts ("took a trip to
    Rome to clear my mind" -> "to clear my mind")."""
    q = prepared.analysis
    if q is None or not _ASKS_REASON.search(q.text):
        return None
    m = _REASON.search(s.text, skip)
    return m.start() if m else None


def _clause(prepared: PreparedAnswer, s: Sentence, strategy: str) -> Draft:
    m = _INTERJECTION.match(s.text)
    skip = m.end() if m and m.end() < len(s.text) else 0
    reason = _reason_start(prepared, s, skip)
    if reason is not None and len(s.text[reason:].split()) >= 2:
        skip = reason
    end = _clause_end(prepared, s, skip)
    words = s.text[skip:end].split()
    text = " ".join(words[:MAX_QUOTE_WORDS]).rstrip(".!,;: ")
    start = s.start + skip
    return Draft(
        text[:1].upper() + text[1:],
        (EvidenceSpan(s.memory_id, start, s.start + end),),
        quote_of(s),
        strategy,
    )


# -- the model as chooser or writer -------------------------------------------------------


def evidence_prompt(prepared: PreparedAnswer, limit: int = 4) -> list[ChatMessage]:
    lines = [
        f"- ({sentences.event_day(s)}{', ' + s.speaker if s.speaker else ''}) {s.text}"
        for s in prepared.evidence[:limit]
    ]
    system = (
        "Answer the question with a few words copied from the notes below. "
        "Notes:\n" + "\n".join(lines)
    )
    return [ChatMessage("system", system), ChatMessage("user", prepared.question)]


def choice_grammar(options: list[str]) -> str:
    """GBNF that accepts exactly one of the options."""
    return "root ::= " + " | ".join(json.dumps(o) for o in options)


def supported(answer: str, prepared: PreparedAnswer) -> EvidenceSpan | None:
    """The evidence sentence that holds every content word of the answer, if any."""
    q = prepared.analysis
    asked = {stem(w) for w in content_words(q.text)} if q else set()
    need = {stem(w) for w in content_words(answer)} - asked - {"you", "your"}
    if not need:
        return None
    for s in prepared.evidence:
        have = {stem(w) for w in content_words(s.text)}
        renders = " ".join(d.render().lower() for d in dates_.resolve_mentions(s.text, s.when))
        have |= {stem(w) for w in content_words(renders + " " + sentences.event_day(s))}
        if need <= have:
            return _span(s)
    return None


@dataclass
class Strategy:
    name: str
    needs_model: bool

    def stream(
        self, prepared: PreparedAnswer, model: Callable[[], Generator], params: GenerationParams
    ) -> AnswerStream:
        draft = compose_extractive(prepared, self.name)
        return AnswerStream(prepared, pieces(draft.answer), draft=draft)


def pieces(text: str) -> Iterator[str]:
    """A composed answer streams word by word, like a generated one."""
    return iter(re.findall(r"\S+\s*", text) or [text])


class Constrained(Strategy):
    def stream(
        self, prepared: PreparedAnswer, model: Callable[[], Generator], params: GenerationParams
    ) -> AnswerStream:
        def choose(pool: list[Candidate]) -> Candidate | None:
            options = list(dict.fromkeys(_say(c) for c in pool))
            if len(options) < 2:
                return pool[0]
            grammar_params = GenerationParams(
                max_tokens=48, temperature=0.0, grammar=choice_grammar(options)
            )
            said = "".join(model().stream(evidence_prompt(prepared), grammar_params)).strip()
            return next((c for c in pool if _say(c) == said), None)

        draft = compose_extractive(prepared, self.name, choose)
        return AnswerStream(prepared, pieces(draft.answer), draft=draft)


class Generate(Strategy):
    def stream(
        self, prepared: PreparedAnswer, model: Callable[[], Generator], params: GenerationParams
    ) -> AnswerStream:
        if prepared.abstain or not prepared.evidence:
            draft = compose_extractive(prepared, self.name)
            return AnswerStream(prepared, pieces(draft.answer), draft=draft)

        def compose(text: str) -> Draft:
            span = supported(text, prepared)
            if span is None:
                return fallback(prepared, self.name, verified=False)
            s = next(
                e for e in prepared.evidence if (e.memory_id, e.start) == (span.id, span.start)
            )
            return Draft(text, (span,), quote_of(s), self.name)

        messages = prepared.messages or evidence_prompt(prepared)

        def verified() -> Iterator[str]:
            # The reply is checked before anyone sees it: an unsupported sentence never
            # reaches the terminal or the chat screen, its replacement does.
            text = "".join(model().stream(messages, params)).strip()
            stream.draft = compose(text)
            yield from pieces(stream.draft.answer)

        stream = AnswerStream(prepared, verified())
        return stream


STRATEGIES: dict[str, Strategy] = {
    "extract": Strategy("extract", needs_model=False),
    "constrained": Constrained("constrained", needs_model=True),
    "generate": Generate("generate", needs_model=True),
}


def strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise MemexError(
            f"Unknown answer strategy {name!r}; use one of {', '.join(STRATEGIES)}.",
            kind="bad_input",
        ) from None
