"""Session summaries (the L1 layer over chat turns): extractive units that point to their turns.

Every session (a conversation, a chat day) is cut into units of up to UNIT_TURNS consecutive
turns. A unit's text is extractive: each covered turn's first sentences, prefixed with the
speaker, so a question whose words are spread over a few turns of one exchange ("what did she
study and why?") matches the unit even when no single turn holds them all. Units are searched
beside the turns (their own FTS5 index); a unit hit is never returned itself: it lifts the
stored turns it covers, so search results are always memories.

Units are rebuilt inside the write transaction of the turns they cover (insert, delete).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, text

UNIT_TURNS = 6
SENTENCE_CHARS = 240
_SENT_END = re.compile(r"(?<=[.!?])\s+")


def _extract(turn: str) -> str:
    """The first sentences of a turn, up to SENTENCE_CHARS characters."""
    out = ""
    for sent in _SENT_END.split(" ".join(turn.split())):
        if out and len(out) + len(sent) > SENTENCE_CHARS:
            break
        out = f"{out} {sent}".strip()
    return out[:SENTENCE_CHARS]


def rebuild(conn: Connection, sessions: Iterable[str | None]) -> int:
    """Recompute the units of these sessions from their current turns; returns units written."""
    written = 0
    for session in {s for s in sessions if s}:
        conn.execute(text("DELETE FROM session_units WHERE session=:s"), {"s": session})
        turns = conn.execute(text(
            "SELECT id, speaker, text, at FROM memories WHERE session=:s ORDER BY coalesce(at, created_at), rowid"),
            {"s": session}).all()
        rows = []
        for i in range(0, len(turns), UNIT_TURNS):
            part = turns[i:i + UNIT_TURNS]
            body = "\n".join(f"{t[1] or 'Someone'}: {_extract(t[2])}" for t in part)
            rows.append({"s": session, "o": i // UNIT_TURNS, "t": body, "ids": json.dumps([t[0] for t in part]),
                         "a": part[0][3]})
        if rows:
            conn.execute(text("INSERT INTO session_units(session, ord, text, turn_ids, at) "
                              "VALUES (:s, :o, :t, :ids, :a)"), rows)
            written += len(rows)
    return written


def sessions_of(conn: Connection, memory_ids: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for i in range(0, len(memory_ids), 500):
        part = list(memory_ids[i:i + 500])
        marks = ",".join(f":i{j}" for j in range(len(part)))
        out.update(r[0] for r in conn.execute(
            text(f"SELECT DISTINCT session FROM memories WHERE session IS NOT NULL AND id IN ({marks})"),
            {f"i{j}": v for j, v in enumerate(part)}))
    return out


def search_units(conn: Connection, fts_query: str | None, n: int) -> list[list[str]]:
    """The turn ids of the best-matching units (BM25), best unit first."""
    if not fts_query:
        return []
    if conn.execute(text("SELECT 1 FROM session_units LIMIT 1")).first() is None:
        return []
    rows = conn.execute(text(
        """SELECT u.turn_ids FROM session_units_fts JOIN session_units u ON u.id = session_units_fts.rowid
           WHERE session_units_fts MATCH :q ORDER BY bm25(session_units_fts) LIMIT :n"""),
        {"q": fts_query, "n": n}).all()
    return [json.loads(r[0]) for r in rows]
