"""Value objects that cross the memory package boundary (plain dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

MemoryKind = Literal["note", "fact", "chat", "document"]
MEMORY_KINDS: tuple[str, ...] = ("note", "fact", "chat", "document")


@dataclass(frozen=True)
class Memory:
    """One stored memory (L0 raw data). `at` is when it happened; `created_at` when stored."""

    id: str
    kind: str
    text: str
    created_at: datetime
    at: datetime | None = None
    source: str | None = None
    sensitivity: str = "normal"
    superseded_by: str | None = None
    topic: str | None = None
    # Chat turns: who said it and which conversation/session it belongs to (None elsewhere).
    speaker: str | None = None
    session: str | None = None

    @property
    def when(self) -> datetime:
        """The best date for this memory: the event time, else when it was stored."""
        return self.at or self.created_at


@dataclass(frozen=True)
class SearchHit:
    """A memory found by retrieval; `text` is the best-matching chunk of it."""

    id: str
    text: str
    score: float
    kind: str
    created_at: datetime
    at: datetime | None = None
    source: str | None = None
    superseded_by: str | None = None
    # Best cosine similarity of any of its chunks to the query (None: found by keywords only).
    # RRF scores are rank-based; callers that must judge absolute relevance (abstention) use this.
    similarity: float | None = None
    keyword_match: bool = False
    speaker: str | None = None
    session: str | None = None

    @property
    def when(self) -> datetime:
        return self.at or self.created_at

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "text": self.text,
            "score": round(self.score, 6),
            "source": self.source,
            "created_at": self.created_at.isoformat(),
            "at": self.at.isoformat() if self.at else None,
            "kind": self.kind,
            "superseded_by": self.superseded_by,
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "speaker": self.speaker,
            "session": self.session,
        }


@dataclass(frozen=True)
class ProfileField:
    """A profile value used for autofill; keys are WHATWG autocomplete names."""

    key: str
    value: str
    updated_at: datetime
    source_memory: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "value": self.value,
            "source_memory": self.source_memory,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass
class ImportReport:
    """What an import did. `skipped` and `errors` hold {"path", "reason"} entries."""

    imported: int = 0
    chunks: int = 0
    memory_ids: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    cancelled: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "imported": self.imported,
            "chunks": self.chunks,
            "skipped": self.skipped,
            "errors": self.errors,
            "memory_ids": self.memory_ids,
            "cancelled": self.cancelled,
        }


@dataclass(frozen=True)
class ImportProgress:
    """Reported during an import: `done` of `total` files, the current path."""

    done: int
    total: int
    path: str
    phase: str = "reading"
