"""Chat turns: the context a turn is embedded with, and its place among its session's turns.

A bare turn ("Yes, last weekend!") means little to an embedding model; the session's date,
the speaker and the turn it answers make it findable. Only the embedding sees this context:
the stored text, the keyword index and what search returns stay the turn itself.
"""

from __future__ import annotations

from datetime import datetime

PREVIOUS_CHARS = 220


def context_text(text: str, *, speaker: str | None, session: str | None, at: datetime | None,
                 previous: str | None = None, previous_speaker: str | None = None) -> str | None:
    """The text to embed for one turn (None for memories that are not chat turns)."""
    if not speaker and not session:
        return None
    head = speaker or "Someone"
    if at is not None:
        head += f" ({at.strftime('%d %B %Y')})"
    out = f"{head}: {text}"
    if previous:
        prev = " ".join(previous.split())[:PREVIOUS_CHARS]
        out += f"\n[replying to {previous_speaker or 'someone'}: {prev}]"
    return out
