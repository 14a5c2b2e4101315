"""Row-level writes on the memory tables. Every function runs inside the caller's transaction."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from memory import summaries
from memory.db import from_iso, to_iso, utcnow
from memory.types import Memory

_WS = re.compile(r"\s+")


def content_hash(text_: str) -> str:
    """Duplicate detection ignores whitespace differences and case."""
    return hashlib.sha256(_WS.sub(" ", text_.strip()).casefold().encode("utf-8")).hexdigest()


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def vector_id(memory_id: str, ord_: int) -> str:
    return f"{memory_id}:{ord_}"


@dataclass
class NewMemory:
    """A memory about to be written, with its chunks (and their embeddings when known)."""

    id: str
    kind: str
    text: str
    hash: str
    at: datetime | None
    created_at: datetime
    source: str | None
    source_id: int | None
    topic: str | None
    chunks: list[str]
    embeddings: list[list[float]] | None = None
    sensitivity: str = "normal"
    speaker: str | None = None
    session: str | None = None
    # What is embedded instead of the bare chunk (chat turns: date, speaker, previous turn).
    context: str | None = None


MEMORY_COLUMNS = (
    "id, kind, text, at, created_at, source, sensitivity, superseded_by, topic, speaker, session"
)


def row_to_memory(r: Any) -> Memory:
    return Memory(
        id=r[0],
        kind=r[1],
        text=r[2],
        at=from_iso(r[3]),
        created_at=from_iso(r[4]) or utcnow(),
        source=r[5],
        sensitivity=r[6],
        superseded_by=r[7],
        topic=r[8],
        speaker=r[9],
        session=r[10],
    )


def turn_hash(text_: str, speaker: str | None, session: str | None, at: datetime | None) -> str:
    """Chat turns repeat ("Thanks!"): the same words said in another session are another memory."""
    if not speaker and not session:
        return content_hash(text_)
    return content_hash(f"{text_}\x1f{speaker or ''}\x1f{session or ''}\x1f{to_iso(at) or ''}")


def existing_hashes(conn: Connection, hashes: Sequence[str]) -> dict[str, str]:
    """content_hash -> memory id for hashes already stored."""
    out: dict[str, str] = {}
    for i in range(0, len(hashes), 500):
        part = list(hashes[i : i + 500])
        marks = ",".join(f":h{j}" for j in range(len(part)))
        for h, mid in conn.execute(
            text(f"SELECT content_hash, id FROM memories WHERE content_hash IN ({marks})"),
            {f"h{j}": v for j, v in enumerate(part)},
        ):
            out[h] = mid
    return out


def tombstoned(conn: Connection, hashes: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for i in range(0, len(hashes), 500):
        part = list(hashes[i : i + 500])
        marks = ",".join(f":h{j}" for j in range(len(part)))
        out.update(
            r[0]
            for r in conn.execute(
                text(f"SELECT content_hash FROM tombstones WHERE content_hash IN ({marks})"),
                {f"h{j}": v for j, v in enumerate(part)},
            )
        )
    return out


def insert_memories(conn: Connection, mems: Sequence[NewMemory]) -> int:
    """Insert memories, chunks and pending vector upserts; returns the number of chunks."""
    if not mems:
        return 0
    conn.execute(
        text("""INSERT INTO memories(id, kind, text, content_hash, at, created_at, source,
                source_id, sensitivity, topic, speaker, session)
                VALUES (:id, :kind, :text, :hash, :at, :created, :source,
                :source_id, :sens, :topic, :speaker, :session)"""),
        [
            {
                "id": m.id,
                "kind": m.kind,
                "text": m.text,
                "hash": m.hash,
                "at": to_iso(m.at),
                "created": to_iso(m.created_at),
                "source": m.source,
                "source_id": m.source_id,
                "sens": m.sensitivity,
                "topic": m.topic,
                "speaker": m.speaker,
                "session": m.session,
            }
            for m in mems
        ],
    )
    pairs = [(m.id, i, c) for m in mems for i, c in enumerate(m.chunks)]
    conn.execute(
        text("INSERT INTO chunks(memory_id, ord, text) VALUES (:m, :o, :t)"),
        [{"m": mid, "o": o, "t": c} for mid, o, c in pairs],
    )
    conn.execute(
        text("INSERT OR REPLACE INTO vector_outbox(vector_id, op) VALUES (:v, 'upsert')"),
        [{"v": vector_id(mid, o)} for mid, o, _ in pairs],
    )
    conn.execute(
        text(
            "DELETE FROM tombstones WHERE content_hash IN (SELECT content_hash FROM memories "
            "WHERE id IN (" + ",".join(f":i{j}" for j in range(len(mems))) + "))"
        ),
        {f"i{j}": m.id for j, m in enumerate(mems)},
    )
    dates = [
        {"m": m.id, "s": d.start_date.isoformat(), "e": d.end_date.isoformat()}
        for m in mems
        for d in _mentions(m)
    ]
    if dates:
        conn.execute(
            text("INSERT INTO memory_dates(memory_id, start_date, end_date) VALUES (:m, :s, :e)"),
            dates,
        )
    summaries.rebuild(conn, {m.session for m in mems if m.session})
    return len(pairs)


def _mentions(m: NewMemory) -> list[Any]:
    """Dates the text mentions, resolved against the memory's own event time (first 2,000 chars)."""
    from memory.dates import resolve_mentions

    try:
        return resolve_mentions(m.text[:2000], m.at or m.created_at)
    except (ValueError, OverflowError):
        return []


def delete_memories(conn: Connection, ids: Sequence[str], *, tombstone: bool) -> list[Memory]:
    """Delete memories (chunks and FTS rows follow by cascade/trigger); queue vector deletes."""
    removed: list[Memory] = []
    topics: set[str] = set()
    sessions: set[str] = set()
    for i in range(0, len(ids), 500):
        part = list(ids[i : i + 500])
        marks = ",".join(f":i{j}" for j in range(len(part)))
        params = {f"i{j}": v for j, v in enumerate(part)}
        rows = conn.execute(
            text(f"SELECT {MEMORY_COLUMNS}, content_hash FROM memories WHERE id IN ({marks})"),
            params,
        ).all()
        if not rows:
            continue
        removed.extend(row_to_memory(r) for r in rows)
        topics.update(t for r in rows if r[8] for t in r[8].split())
        sessions.update(r[10] for r in rows if r[10])
        conn.execute(
            text(f"""INSERT OR REPLACE INTO vector_outbox(vector_id, op)
                     SELECT memory_id || ':' || ord, 'delete' FROM chunks
                     WHERE memory_id IN ({marks})"""),
            params,
        )
        if tombstone:
            now = to_iso(utcnow())
            conn.execute(
                text(
                    "INSERT OR REPLACE INTO tombstones(content_hash, forgotten_at) VALUES (:h, :t)"
                ),
                [{"h": r[-1], "t": now} for r in rows],
            )
        conn.execute(text(f"DELETE FROM memories WHERE id IN ({marks})"), params)
        # Profile values drawn from a forgotten memory lose their link, not their value.
        conn.execute(
            text(f"UPDATE profile_fields SET source_memory=NULL WHERE source_memory IN ({marks})"),
            params,
        )
    for topic in topics:
        recompute_topic(conn, topic)
    summaries.rebuild(conn, sessions)
    return removed


def recompute_topic(conn: Connection, topic: str) -> None:
    """Memories whose primary topic is `topic` are superseded by the newest memory that sets it.

    A memory may set several slots ("joined X as head of data": employer, job_title); it is
    superseded only when its primary slot is set again by a newer memory.
    """
    rows = conn.execute(
        text("""SELECT id, topic, coalesce(at, created_at) AS w FROM memories
                WHERE ' ' || topic || ' ' LIKE :t ORDER BY w DESC, created_at DESC"""),
        {"t": f"% {topic} %"},
    ).all()
    if not rows:
        return
    newest_id, _, newest_w = rows[0]
    updates = []
    for mid, topics, when in rows:
        if topics.split()[0] != topic:
            continue
        succ = newest_id if (mid != newest_id and when <= newest_w) else None
        updates.append({"i": mid, "s": succ})
    if updates:
        conn.execute(text("UPDATE memories SET superseded_by=:s WHERE id=:i"), updates)


def log_event(conn: Connection, event: str, **detail: Any) -> None:
    conn.execute(
        text("INSERT INTO events(at, kind, detail) VALUES (:a, :k, :d)"),
        {"a": to_iso(utcnow()), "k": event, "d": json.dumps(detail, default=str)},
    )


def ids_for_source(conn: Connection, source: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            text("""SELECT id FROM memories WHERE source=:s
                OR source_id IN (SELECT id FROM sources WHERE path=:s)"""),
            {"s": source},
        )
    ]


def topics_of(mems: Iterable[NewMemory]) -> set[str]:
    return {t for m in mems if m.topic for t in m.topic.split()}


def existing_ids(conn: Connection, ids: Sequence[str]) -> list[str]:
    out: list[str] = []
    for i in range(0, len(ids), 500):
        part = list(ids[i : i + 500])
        marks = ",".join(f":i{j}" for j in range(len(part)))
        out.extend(
            r[0]
            for r in conn.execute(
                text(f"SELECT id FROM memories WHERE id IN ({marks})"),
                {f"i{j}": v for j, v in enumerate(part)},
            )
        )
    return out
