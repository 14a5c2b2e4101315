"""Answers from memory: retrieval, relevance (abstention), prompt packing, citations.

The tiny default model cannot be trusted to say "I don't know", so whether anything relevant
is remembered is decided here from retrieval scores, before the model runs. The prompt is
packed within the model's context: today's date, profile facts, then memories (most relevant
and newest first, each with its date), then the recent conversation and the question.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from app import relevance
from app.errors import MemexError
from inference.base import ChatMessage
from memory.types import ProfileField, SearchHit

if TYPE_CHECKING:
    from memory import MemoryStore
    from memory.types import Memory

MAX_QUESTION_CHARS = 8000
RETRIEVE_K = 8
MAX_CITATIONS = 3
# Cite the best hit and those close to it: further ones are context, not what the answer rests on.
CITATION_MARGIN = 0.12
BACKGROUND_SIMILARITY = 0.2
ABSTAIN_ANSWER = "I don't have any memory about that, so I can't answer it."

SYSTEM_TEMPLATE = (
    "You are memex, the user's personal memory. Today is {today}. "
    "Answer the user's question in one or two short sentences, using only the facts below. "
    "The facts were written by the user: \"I\" and \"my\" mean the user, so answer with \"you\" and \"your\". "
    "If a fact has a newer replacement, use the newest one."
)

# profile key -> words in a question that ask for it
PROFILE_QUERY_WORDS: dict[str, tuple[str, ...]] = {
    "name": ("name", "called"), "given-name": ("first name",), "family-name": ("last name", "surname"),
    "email": ("email", "e-mail"), "tel": ("phone", "mobile", "cell", "number"),
    "street-address": ("address", "live", "street"), "address-level2": ("city", "live", "town"),
    "postal-code": ("postcode", "postal", "zip"), "country-name": ("country",),
    "bday": ("birthday", "born", "birth"), "organization": ("work", "employer", "company", "job"),
    "organization-title": ("title", "job", "role", "position"),
}


class TokenCounter(Protocol):
    """What prompt packing needs from a model (inference.base.Backend satisfies it)."""

    def count_tokens(self, text: str) -> int: ...

    @property
    def context_length(self) -> int: ...


@dataclass(frozen=True)
class Citation:
    id: str
    text: str
    source: str | None

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "text": self.text, "source": self.source}


@dataclass
class PreparedAnswer:
    """Everything decided before the model runs."""

    question: str
    messages: list[ChatMessage]
    packed: list[SearchHit]  # memories that made it into the prompt, in prompt order
    relevant: list[SearchHit]  # the subset judged relevant to the question
    slot_ids: frozenset[str]  # relevant because they hold the asked-about life slot
    profile: list[ProfileField]
    abstain: bool
    retrieval_ms: float
    build_ms: float
    prompt_tokens: int = 0

    def citations(self, answer: str = "") -> list[Citation]:
        return select_citations(self.relevant, answer, self.slot_ids)


@dataclass
class Answer:
    answer: str
    citations: list[Citation]
    retrieval_ms: float
    generation_ms: float
    abstained: bool = False
    build_ms: float = 0.0
    first_token_ms: float | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "answer": self.answer,
            "citations": [c.to_json() for c in self.citations],
            "retrieval_ms": round(self.retrieval_ms, 2),
            "generation_ms": round(self.generation_ms, 2),
            "abstained": self.abstained,
            "build_ms": round(self.build_ms, 2),
        }


@dataclass
class AnswerStream:
    """Iterate for reply pieces; `result()` afterwards gives the Answer with final citations."""

    prepared: PreparedAnswer
    _pieces: Iterator[str]
    _parts: list[str] = field(default_factory=list)
    _start: float = 0.0
    _first: float | None = None
    _end: float | None = None

    def __iter__(self) -> Iterator[str]:
        self._start = time.perf_counter()
        try:
            for piece in self._pieces:
                if self._first is None:
                    self._first = time.perf_counter()
                self._parts.append(piece)
                yield piece
        finally:
            self._end = time.perf_counter()
            # Stop the model at once when the consumer stops early (client gone, Ctrl-C):
            # closing the backend generator releases its lock for the next request.
            close = getattr(self._pieces, "close", None)
            if close is not None:
                close()

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def result(self) -> Answer:
        if self._end is None:  # never iterated: drain it
            for _ in self:
                pass
        answer = self.text.strip()
        start = self._start
        return Answer(
            answer=answer,
            citations=self.prepared.citations(answer),
            retrieval_ms=self.prepared.retrieval_ms,
            generation_ms=((self._end or start) - start) * 1000.0,
            abstained=self.prepared.abstain,
            build_ms=self.prepared.build_ms,
            first_token_ms=None if self._first is None else (self._first - start) * 1000.0,
        )


def validate_question(question: str) -> str:
    q = (question or "").strip()
    if not q:
        raise MemexError("The question is empty; type what you want to know.", kind="bad_input")
    if len(q) > MAX_QUESTION_CHARS:
        raise MemexError(
            f"The question is {len(q):,} characters long; keep it under {MAX_QUESTION_CHARS:,}.",
            kind="bad_input",
        )
    return q


def profile_matches(question: str, profile: Sequence[ProfileField]) -> list[ProfileField]:
    q = question.lower()
    keys = {k for k, words in PROFILE_QUERY_WORDS.items() if any(re.search(rf"\b{w}\b", q) for w in words)}
    return [f for f in profile if f.key in keys]


_DISTINCT = re.compile(r"\b(?:\d[\d\-\s().]{2,}\d|\d+|[A-Z][\w'-]+)\b")


def select_citations(relevant: Sequence[SearchHit], answer: str = "",
                     slot_ids: frozenset[str] = frozenset()) -> list[Citation]:
    """The memories the answer rests on: the best relevant hits (and the holders of the
    asked-about life slot), plus any whose specific values (numbers, names) the answer repeats."""
    if not relevant:
        return []
    best = max((h.similarity for h in relevant if h.similarity is not None), default=None)
    chosen: list[SearchHit] = []
    if slot_ids and any(h.superseded_by is None and h.id in slot_ids for h in relevant):
        # The question asks for a life slot (address, employer, ...): its holder is the answer.
        relevant_first = [h for h in relevant if h.id in slot_ids]
        chosen = relevant_first[:MAX_CITATIONS]
    for hit in relevant if not chosen else ():
        near_best = (best is None or hit.similarity is None or hit.id in slot_ids
                     or hit.similarity >= best - CITATION_MARGIN)
        if near_best and len(chosen) < MAX_CITATIONS:
            chosen.append(hit)
    if answer:
        said = {m.group(0).strip().lower() for m in _DISTINCT.finditer(answer)}
        for hit in relevant:
            if hit in chosen:
                continue
            values = {m.group(0).strip().lower() for m in _DISTINCT.finditer(hit.text)}
            # Sentence-initial capitals ("I", "My") are not values; need a longer shared token.
            if any(len(v) > 3 for v in values & said):
                chosen.append(hit)
    return [Citation(id=h.id, text=h.text, source=h.source) for h in chosen]


def format_date(when: datetime) -> str:
    return when.strftime("%Y-%m-%d")


def format_today(now: datetime) -> str:
    return now.strftime("%A, %d %B %Y")


def memory_line(hit: SearchHit) -> str:
    text = " ".join(hit.text.split())
    note = " (outdated: replaced by a newer memory)" if hit.superseded_by else ""
    return f"- [{format_date(hit.when)}] {text}{note}"


def build_messages(
    question: str,
    hits: Sequence[SearchHit],
    profile: Sequence[ProfileField],
    *,
    count_tokens: Callable[[str], int],
    context_length: int,
    answer_tokens: int,
    history: Sequence[ChatMessage] = (),
    now: datetime,
) -> tuple[list[ChatMessage], list[SearchHit], int]:
    """Pack the prompt within the context; returns (messages, packed hits, prompt tokens).

    Priority when space runs out: question > system text > profile > memories (in the given
    order: most relevant first) > older conversation turns.
    """
    overhead = 6  # chat-template tokens per message
    system = SYSTEM_TEMPLATE.format(today=format_today(now))
    budget = context_length - answer_tokens - 8
    used = count_tokens(system) + count_tokens(question) + 2 * overhead
    if used > budget:
        raise MemexError(
            "The question is too long for the model's context; shorten it.", kind="bad_input"
        )
    parts = [system]
    profile_lines = [f"- {f.key}: {f.value}" for f in profile]
    if profile_lines:
        block = "\nProfile:\n" + "\n".join(profile_lines)
        cost = count_tokens(block)
        if used + cost <= budget:
            parts.append(block)
            used += cost
    packed: list[SearchHit] = []
    memory_lines: list[str] = []
    head = "\nMemories (newest facts win):\n"
    used += count_tokens(head)  # reserved up front so the lines below never overflow
    for hit in hits:
        line = memory_line(hit)
        cost = count_tokens(line) + 1
        if used + cost > budget:
            continue  # a shorter memory further down may still fit
        memory_lines.append(line)
        packed.append(hit)
        used += cost
    if memory_lines:
        parts.append(head + "\n".join(memory_lines))
    else:
        parts.append("\nNo memories match this question.")
    kept: list[ChatMessage] = []
    for msg in reversed(list(history)):  # newest turns are worth the most
        cost = count_tokens(msg.content) + overhead
        if used + cost > budget:
            break
        kept.append(msg)
        used += cost
    messages = [ChatMessage("system", "\n".join(parts)), *reversed(kept), ChatMessage("user", question)]
    return messages, packed, used


def order_for_prompt(relevant: Sequence[SearchHit], others: Sequence[SearchHit]) -> list[SearchHit]:
    """Relevant memories first, in retrieval order (which already ranks current facts above
    the ones they replaced); weaker but related hits after them as background."""
    rel_ids = {h.id for h in relevant}
    background = [h for h in others if h.id not in rel_ids and not h.superseded_by
                  and h.similarity is not None and h.similarity >= BACKGROUND_SIMILARITY]
    return [*relevant, *background]


def prepare_answer(
    memory: MemoryStore,
    question: str,
    *,
    tokenizer: Callable[[], TokenCounter],
    answer_tokens: int,
    history: Sequence[ChatMessage] = (),
    now: datetime | None = None,
    k: int = RETRIEVE_K,
) -> PreparedAnswer:
    """Retrieve, judge relevance, and pack the prompt (no model call).

    `tokenizer` is called only when the prompt is built, so abstaining never loads a model.
    """
    question = validate_question(question)
    t0 = time.perf_counter()
    hits = memory.search(question, k=k)
    profile = memory.profile()
    t1 = time.perf_counter()
    judgement = relevance.judge(question, hits, _topics(memory, hits))
    previous = next((m.content for m in reversed(history) if m.role == "user"), None)
    if not judgement.relevant and previous:
        # A follow-up ("What colour is she?") gets its subject from the previous question.
        query = f"{previous} {question}"[-MAX_QUESTION_CHARS:]
        t_retry = time.perf_counter()
        hits = memory.search(query, k=k)
        t1 += time.perf_counter() - t_retry
        judgement = relevance.judge(query, hits, _topics(memory, hits))
    relevant = list(judgement.relevant)
    asked_profile = profile_matches(question, profile)
    if not relevant and asked_profile:
        # Answerable from accepted profile facts: rest it on the memories they came from.
        for f in asked_profile:
            src = memory.get(f.source_memory) if f.source_memory else None
            if src is not None and not any(h.id == src.id for h in relevant):
                relevant.append(_hit_from_memory(src))
    abstain = not relevant and not asked_profile
    messages: list[ChatMessage] = []
    packed: list[SearchHit] = []
    tokens = 0
    if not abstain:
        model = tokenizer()
        messages, packed, tokens = build_messages(
            question, order_for_prompt(relevant, hits), profile,
            count_tokens=model.count_tokens, context_length=model.context_length, answer_tokens=answer_tokens,
            history=history, now=now or datetime.now().astimezone(),
        )
        packed_ids = {h.id for h in packed}
        relevant = [h for h in relevant if h.id in packed_ids]
    t2 = time.perf_counter()
    return PreparedAnswer(
        question=question, messages=messages, packed=packed, relevant=relevant,
        slot_ids=judgement.slot_ids, profile=list(profile),
        abstain=abstain, retrieval_ms=(t1 - t0) * 1000.0, build_ms=(t2 - t1) * 1000.0,
        prompt_tokens=tokens,
    )


def _topics(memory: MemoryStore, hits: Sequence[SearchHit]) -> dict[str, str | None]:
    return {h.id: getattr(memory.get(h.id), "topic", None) for h in hits}


def _hit_from_memory(m: Memory) -> SearchHit:
    return SearchHit(id=m.id, text=m.text, score=0.0, kind=m.kind, created_at=m.created_at, at=m.at,
                     source=m.source, superseded_by=m.superseded_by)
