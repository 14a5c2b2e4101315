"""Session summaries (the L1 layer over chat turns): extractive units that point to their turns.

Every session (a conversation, a chat day) is cut into units of up to UNIT_TURNS consecutive
turns. A unit's text is extractive: each covered turn's first sentences, prefixed with the
speaker, so a question whose words are spread over a few turns of one exchange ("what did she
study and why?") matches the unit even when no single turn holds them all. Units are searched
beside the turns (their own FTS5 index); a unit hit is never returned itself: it lifts the
stored turns it covers, so search results are always memories.

The context index is the keyword side of the same idea, one row per turn: the turn's words
with its previous and next turn's words in their own, lower-weighted columns, so "what did
she see on the camping trip?" finds the answer turn ("We saw the Perseids!") that follows
the turn naming the trip. A context hit lifts only its own turn.

Units and context rows are rebuilt inside the write transaction of the turns they cover
(insert, delete), one session at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

if TYPE_CHECKING:
    from sqlalchemy import Row

    # A stored chat turn as `_turns` selects it: id, speaker, text, at. Only for the type
    # checker: how Row is parameterised differs between SQLAlchemy 2.0 and 2.1.
    Turn = Row[str, str | None, str, str | None]

UNIT_TURNS = 6
SENTENCE_CHARS = 240
# bm25 column weights of the context index: the turn itself, the turn before, the turn after.
CONTEXT_WEIGHTS = (1.0, 0.3, 0.3)
_SENT_END = re.compile(r"(?<=[.!?])\s+")


def _extract(turn: str) -> str:
    """The first sentences of a turn, up to SENTENCE_CHARS characters."""
    out = ""
    for sent in _SENT_END.split(" ".join(turn.split())):
        if out and len(out) + len(sent) > SENTENCE_CHARS:
            break
        out = f"{out} {sent}".strip()
    return out[:SENTENCE_CHARS]


def _turns(conn: Connection, session: str) -> Sequence[Turn]:
    """The session's turns (id, speaker, text, at), oldest first."""
    return conn.execute(
        text(
            "SELECT id, speaker, text, at FROM memories WHERE session=:s "
            "ORDER BY coalesce(at, created_at), rowid"
        ),
        {"s": session},
    ).all()


def _has_context(conn: Connection) -> bool:
    """Stores migrate in order: the units migration runs before the context index exists."""
    row = conn.execute(
        text("SELECT 1 FROM sqlite_master WHERE type='table' AND name='turn_context'")
    ).first()
    return row is not None


def rebuild(conn: Connection, sessions: Iterable[str | None]) -> int:
    """Recompute the units (and context rows) of these sessions from their current turns;
    returns units written."""
    written = 0
    context = _has_context(conn)
    for session in {s for s in sessions if s}:
        conn.execute(text("DELETE FROM session_units WHERE session=:s"), {"s": session})
        turns = _turns(conn, session)
        if context:
            _write_context(conn, session, turns)
        rows = []
        for i in range(0, len(turns), UNIT_TURNS):
            part = turns[i : i + UNIT_TURNS]
            body = "\n".join(f"{t[1] or 'Someone'}: {_extract(t[2])}" for t in part)
            rows.append(
                {
                    "s": session,
                    "o": i // UNIT_TURNS,
                    "t": body,
                    "ids": json.dumps([t[0] for t in part]),
                    "a": part[0][3],
                }
            )
        if rows:
            conn.execute(
                text(
                    "INSERT INTO session_units(session, ord, text, turn_ids, at) "
                    "VALUES (:s, :o, :t, :ids, :a)"
                ),
                rows,
            )
            written += len(rows)
    return written


def rebuild_context(conn: Connection, sessions: Iterable[str | None]) -> None:
    """Recompute only the context rows of these sessions (the migration that adds the index)."""
    for session in {s for s in sessions if s}:
        _write_context(conn, session, _turns(conn, session))


def _write_context(conn: Connection, session: str, turns: Sequence[Turn]) -> None:
    """Bring the session's context rows up to date, rewriting only the rows that changed
    (one new turn touches itself and the turn before it, not the whole chat)."""
    last = len(turns) - 1
    want = {
        (t[0], t[2], turns[i - 1][2] if i else "", turns[i + 1][2] if i < last else "")
        for i, t in enumerate(turns)
    }
    have: set[tuple] = set()
    stale: list[int] = []
    for r in conn.execute(
        text("SELECT id, memory_id, text, prev, next FROM turn_context WHERE session=:s"),
        {"s": session},
    ):
        row = tuple(r[1:])
        if row in want and row not in have:
            have.add(row)
        else:
            stale.append(r[0])
    for i in range(0, len(stale), 500):
        part = stale[i : i + 500]
        marks = ",".join(f":r{j}" for j in range(len(part)))
        conn.execute(
            text(f"DELETE FROM turn_context WHERE id IN ({marks})"),
            {f"r{j}": v for j, v in enumerate(part)},
        )
    order = {t[0]: i for i, t in enumerate(turns)}
    new = sorted(want - have, key=lambda r: order[r[0]])
    rows = [{"m": m, "s": session, "t": t, "p": p, "n": n} for m, t, p, n in new]
    if rows:
        conn.execute(
            text(
                "INSERT INTO turn_context(memory_id, session, text, prev, next) "
                "VALUES (:m, :s, :t, :p, :n)"
            ),
            rows,
        )


def search_context(
    conn: Connection, q_or: str | None, q_and: str | None, n: int, *, large: int, min_and_hits: int
) -> list[str]:
    """Turn ids whose own words or whose neighbours' words match (BM25, weighted columns).

    Above `large` rows the selective AND of the terms is tried first, as for the chunks index.
    """
    if not q_or or not _has_context(conn):
        return []
    size = conn.execute(text("SELECT coalesce(max(id), 0) FROM turn_context")).scalar_one()
    if not size:
        return []
    w = ", ".join(str(x) for x in CONTEXT_WEIGHTS)
    sql = text(f"""SELECT t.memory_id FROM turn_context_fts
                   JOIN turn_context t ON t.id = turn_context_fts.rowid
                   WHERE turn_context_fts MATCH :q ORDER BY bm25(turn_context_fts, {w}) LIMIT :n""")
    if size > large and q_and and q_and != q_or:
        rows = conn.execute(sql, {"q": q_and, "n": n}).all()
        if len(rows) >= min_and_hits:
            return [r[0] for r in rows]
    return [r[0] for r in conn.execute(sql, {"q": q_or, "n": n}).all()]


def sessions_of(conn: Connection, memory_ids: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for i in range(0, len(memory_ids), 500):
        part = list(memory_ids[i : i + 500])
        marks = ",".join(f":i{j}" for j in range(len(part)))
        out.update(
            r[0]
            for r in conn.execute(
                text(
                    "SELECT DISTINCT session FROM memories "
                    f"WHERE session IS NOT NULL AND id IN ({marks})"
                ),
                {f"i{j}": v for j, v in enumerate(part)},
            )
        )
    return out


def search_units(conn: Connection, fts_query: str | None, n: int) -> list[list[str]]:
    """The turn ids of the best-matching units (BM25), best unit first."""
    if not fts_query:
        return []
    if conn.execute(text("SELECT 1 FROM session_units LIMIT 1")).first() is None:
        return []
    rows = conn.execute(
        text(
            """SELECT u.turn_ids FROM session_units_fts
           JOIN session_units u ON u.id = session_units_fts.rowid
           WHERE session_units_fts MATCH :q ORDER BY bm25(session_units_fts) LIMIT :n"""
        ),
        {"q": fts_query, "n": n},
    ).all()
    return [json.loads(r[0]) for r in rows]
