"""Value objects of an answer: what was prepared, what was said, and what it rests on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from app.answer.citations import Citation, select_citations
from inference.base import ChatMessage
from memory.types import ProfileField, SearchHit

if TYPE_CHECKING:
    from app.answer.extract import Candidate
    from app.answer.question import Question
    from app.answer.sentences import Sentence


class TokenCounter(Protocol):
    """What prompt packing needs from a model (inference.base.Backend satisfies it)."""

    def count_tokens(self, text: str) -> int: ...

    @property
    def context_length(self) -> int: ...


@dataclass(frozen=True)
class EvidenceSpan:
    """Characters [start, end) of a cited memory's full text that the answer rests on."""

    id: str
    start: int
    end: int

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "start": self.start, "end": self.end}


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
    analysis: Question | None = None
    evidence: list[Sentence] = field(default_factory=list)  # candidate sentences, best first
    candidates: list[Candidate] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # memory id -> full text
    abstain_reason: str = ""

    def citations(self, answer: str = "") -> list[Citation]:
        return select_citations(self.relevant, answer, self.slot_ids)


@dataclass(frozen=True)
class Draft:
    """A composed answer: the sentence shown, and the spans of memory it rests on."""

    answer: str
    evidence: tuple[EvidenceSpan, ...] = ()
    quote: str = ""  # the supporting sentence, shown under the answer
    strategy: str = ""
    verified: bool = True
    abstained: bool = False


@dataclass
class Answer:
    answer: str
    citations: list[Citation]
    retrieval_ms: float
    generation_ms: float
    abstained: bool = False
    build_ms: float = 0.0
    first_token_ms: float | None = None
    evidence: list[EvidenceSpan] = field(default_factory=list)
    quote: str = ""
    strategy: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "answer": self.answer,
            "citations": [c.to_json() for c in self.citations],
            "evidence": [e.to_json() for e in self.evidence],
            "quote": self.quote,
            "retrieval_ms": round(self.retrieval_ms, 2),
            "generation_ms": round(self.generation_ms, 2),
            "abstained": self.abstained,
            "build_ms": round(self.build_ms, 2),
            "strategy": self.strategy,
        }


@dataclass
class AnswerStream:
    """Iterate for reply pieces; `result()` afterwards gives the Answer with final citations.

    A strategy sets `draft` (the composed answer with its evidence spans and quote) before
    its last piece, so `result()` carries them.
    """

    prepared: PreparedAnswer
    _pieces: Iterator[str]
    draft: Draft | None = None
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
        draft = self.draft
        answer = draft.answer if draft is not None else self.text.strip()
        start = self._start
        citations = self.prepared.citations(answer)
        if draft is not None and draft.evidence:
            by_id = {h.id: h for h in self.prepared.relevant}
            ids = [i for i in dict.fromkeys(e.id for e in draft.evidence) if i in by_id]
            first = [Citation(i, by_id[i].text, by_id[i].source) for i in ids]
            citations = first + [c for c in citations if c.id not in {f.id for f in first}]
        return Answer(
            answer=answer,
            citations=citations,
            retrieval_ms=self.prepared.retrieval_ms,
            generation_ms=((self._end or start) - start) * 1000.0,
            abstained=self.prepared.abstain or (draft is not None and draft.abstained),
            build_ms=self.prepared.build_ms,
            first_token_ms=None if self._first is None else (self._first - start) * 1000.0,
            evidence=list(draft.evidence) if draft is not None else [],
            quote=draft.quote if draft is not None else "",
            strategy=draft.strategy if draft is not None else "",
        )
