"""Which memories an answer cites: the ones it rests on, not everything that was retrieved."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from memory.types import SearchHit

MAX_CITATIONS = 3
# Cite the best hit and those close to it: further ones are context, not what the answer rests on.
CITATION_MARGIN = 0.12
_DISTINCT = re.compile(r"\b(?:\d[\d\-\s().]{2,}\d|\d+|[A-Z][\w'-]+)\b")


@dataclass(frozen=True)
class Citation:
    id: str
    text: str
    source: str | None

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "text": self.text, "source": self.source}


def select_citations(
    relevant: Sequence[SearchHit], answer: str = "", slot_ids: frozenset[str] = frozenset()
) -> list[Citation]:
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
        near_best = (
            best is None
            or hit.similarity is None
            or hit.id in slot_ids
            or hit.similarity >= best - CITATION_MARGIN
        )
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
