"""MemoryStore: the one object the app layer uses to read and write memories.

Write order (crash safety): SQLite is the source of truth. Records, chunks (FTS) and a
*vector outbox* row per pending vector operation are committed in one transaction; chromadb
is updated afterwards and the outbox rows cleared. A crash in between leaves outbox rows that
are replayed the next time the store is used (or by `memex doctor --repair`). Search also
drops vector hits whose memory SQLite no longer has, so nothing forgotten is ever returned.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, text

from memory import profile as profile_rows
from memory import records
from memory.db import open_engine, read_connection, to_iso, utcnow
from memory.embeddings import Embedder
from memory.errors import BadInput, NotFound
from memory.importer import run_import
from memory.ingest import chunk_text
from memory.ingest.parsers import MAX_FILE_BYTES
from memory.retrieval import RetrievalOptions, hybrid_search
from memory.timeline import detect_topic
from memory.turns import context_text
from memory.types import MEMORY_KINDS, ImportProgress, ImportReport, Memory, ProfileField, SearchHit
from memory.vectors import VectorStore

MAX_MEMORY_CHARS = 1_000_000


class MemoryStore:
    def __init__(
        self,
        home: Path,
        *,
        embed_model: str = "",
        embed_batch: int = 64,
        chroma_url: str = "",
        chunk_chars: int = 1200,
        embedder: Embedder | None = None,
        max_file_bytes: int = MAX_FILE_BYTES,
        key: bytes | None = None,
    ) -> None:
        from memory.vault_db import check_open

        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        # The vault check sits here so every front-end (CLI, API, bridge, MCP, GUI) gets it.
        self.encrypted = check_open(self.home, key)
        self.engine = open_engine(self.home / "memex.db", key if self.encrypted else None)
        self.vectors = VectorStore(self.home / "chroma", chroma_url, ids_only=self.encrypted)
        self.embedder = embedder or Embedder(embed_model or None, embed_batch)
        self.chunk_chars = chunk_chars
        self.max_file_bytes = max_file_bytes
        self._lock = threading.RLock()
        self._outbox_replayed = False

    # plumbing -------------------------------------------------------------------------
    @contextmanager
    def read(self) -> Iterator[Connection]:
        with read_connection(self.engine) as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self._lock, self.engine.begin() as conn:
            yield conn

    def embed_new(self, mems: Sequence[records.NewMemory]) -> None:
        # Chat turns embed their first chunk with its context (date, speaker, previous turn).
        chunks = [
            m.context if (i == 0 and m.context) else c for m in mems for i, c in enumerate(m.chunks)
        ]
        vecs = self.embedder.embed(chunks)
        i = 0
        for m in mems:
            m.embeddings = vecs[i : i + len(m.chunks)]
            i += len(m.chunks)

    def flush_vectors(self, mems: Sequence[records.NewMemory]) -> None:
        """Apply the vector writes of freshly committed memories, then clear their outbox rows."""
        ids = [records.vector_id(m.id, i) for m in mems for i in range(len(m.chunks))]
        if not ids:
            return
        embs = [e for m in mems for e in (m.embeddings or [])]
        owners = [m.id for m in mems for _ in m.chunks]
        self.vectors.upsert(ids, embs, owners)
        self._clear_outbox(ids)

    def _clear_outbox(self, ids: Sequence[str]) -> None:
        with self.write() as conn:
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                marks = ",".join(f":v{j}" for j in range(len(part)))
                conn.execute(
                    text(f"DELETE FROM vector_outbox WHERE vector_id IN ({marks})"),
                    {f"v{j}": v for j, v in enumerate(part)},
                )

    def replay_vector_outbox(self) -> int:
        """Repair: finish every vector operation still pending in the outbox now, even when this
        store has replayed it once already; returns how many were replayed."""
        return self._replay_outbox(force=True)

    def _replay_outbox(self, force: bool = False) -> int:
        """Finish vector operations a crash interrupted; returns how many were replayed."""
        if self._outbox_replayed and not force:
            return 0
        self._outbox_replayed = True
        with self.read() as conn:
            rows = conn.execute(text("SELECT vector_id, op FROM vector_outbox")).all()
            if not rows:
                return 0
            ups = [r[0] for r in rows if r[1] == "upsert"]
            dels = [r[0] for r in rows if r[1] == "delete"]
            texts: dict[str, str] = {}
            for vid in ups:
                mid, _, o = vid.rpartition(":")
                t = conn.execute(
                    text("SELECT text FROM chunks WHERE memory_id=:m AND ord=:o"),
                    {"m": mid, "o": int(o)},
                ).scalar()
                if t is not None:
                    texts[vid] = t
        self.vectors.delete(dels)
        if texts:
            vids = list(texts)
            self.vectors.upsert(
                vids,
                self.embedder.embed([texts[v] for v in vids]),
                [v.rpartition(":")[0] for v in vids],
            )
        self._clear_outbox([r[0] for r in rows])
        return len(rows)

    def _apply_vector_deletes(self) -> None:
        with self.read() as conn:
            dels = [
                r[0]
                for r in conn.execute(text("SELECT vector_id FROM vector_outbox WHERE op='delete'"))
            ]
        if dels:
            self.vectors.delete(dels)
            self._clear_outbox(dels)

    # writes ---------------------------------------------------------------------------
    def remember(
        self,
        text_: str,
        *,
        source: str | None = None,
        at: datetime | None = None,
        kind: str = "note",
        speaker: str | None = None,
        session: str | None = None,
    ) -> tuple[Memory, bool]:
        """Store one memory; returns (memory, created). created=False: duplicate content."""
        body = (text_ or "").strip()
        if not body:
            raise BadInput("There is nothing to remember: the text is empty.")
        if len(body) > MAX_MEMORY_CHARS:
            raise BadInput(
                f"The text is longer than {MAX_MEMORY_CHARS:,} characters; import it as a file "
                "instead."
            )
        if kind not in MEMORY_KINDS:
            raise BadInput(f"Unknown kind {kind!r}; use one of: {', '.join(MEMORY_KINDS)}.")
        if not all(_utf8_ok(v) for v in (body, source, speaker, session)):
            raise BadInput(
                "The text is not valid UTF-8 (it holds undecodable bytes); fix its encoding and "
                "try again."
            )
        self._replay_outbox()
        h = records.turn_hash(body, speaker, session, at)
        with self.read() as conn:
            dup = records.existing_hashes(conn, [h]).get(h)
        if dup:
            existing = self.get(dup)
            assert existing is not None
            return existing, False
        mem = records.NewMemory(
            id=records.new_id(),
            kind=kind,
            text=body,
            hash=h,
            at=at,
            created_at=utcnow(),
            source=source,
            source_id=None,
            topic=detect_topic(body),
            chunks=chunk_text(body, self.chunk_chars),
            speaker=speaker,
            session=session,
            context=context_text(body, speaker=speaker, session=session, at=at),
        )
        self.embed_new([mem])
        with self.write() as conn:
            records.insert_memories(conn, [mem])
            for topic in records.topics_of([mem]):
                records.recompute_topic(conn, topic)
            records.log_event(conn, "remember", id=mem.id, kind=kind)
        self.flush_vectors([mem])
        stored = self.get(mem.id)
        assert stored is not None
        return stored, True

    def import_paths(
        self,
        paths: Sequence[Path],
        *,
        progress: Callable[[ImportProgress], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        max_memories_per_file: int | None = None,
    ) -> ImportReport:
        """`max_memories_per_file`: refuse a file that would become more memories (None: the
        default)."""
        self._replay_outbox()
        return run_import(self, [Path(p) for p in paths], progress, cancel, max_memories_per_file)

    def update_text(self, memory_id: str, text_: str) -> Memory:
        self._replay_outbox()
        old = self.get(memory_id)
        if old is None:
            raise NotFound(f"No memory has the id {memory_id!r}.")
        body = (text_ or "").strip()
        if not body:
            raise BadInput("The new text is empty; forget the memory instead.")
        mem = records.NewMemory(
            id=memory_id,
            kind=old.kind,
            text=body,
            hash=records.content_hash(body),
            at=old.at,
            created_at=old.created_at,
            source=old.source,
            source_id=None,
            topic=detect_topic(body),
            chunks=chunk_text(body, self.chunk_chars),
            sensitivity=old.sensitivity,
            speaker=old.speaker,
            session=old.session,
            context=context_text(body, speaker=old.speaker, session=old.session, at=old.at),
        )
        self.embed_new([mem])
        with self.write() as conn:
            other = records.existing_hashes(conn, [mem.hash]).get(mem.hash)
            if other and other != memory_id:
                raise BadInput(f"Another memory ({other}) already has exactly this text.")
            source_id = conn.execute(
                text("SELECT source_id FROM memories WHERE id=:i"), {"i": memory_id}
            ).scalar()
            mem.source_id = source_id
            records.delete_memories(conn, [memory_id], tombstone=False)
            records.insert_memories(conn, [mem])
            for topic in set((old.topic or "").split()) | records.topics_of([mem]):
                records.recompute_topic(conn, topic)
            records.log_event(conn, "edit", id=memory_id)
        self._apply_vector_deletes()
        self.flush_vectors([mem])
        updated = self.get(memory_id)
        assert updated is not None
        return updated

    def forget(self, ids: Iterable[str]) -> int:
        """Remove memories from SQLite, FTS and vectors; their content is tombstoned."""
        wanted = list(dict.fromkeys(i.strip() for i in ids if i and i.strip()))
        if not wanted:
            raise BadInput("Give at least one memory id to forget.")
        with self.read() as conn:
            known = set(records.existing_ids(conn, wanted))
        missing = [i for i in wanted if i not in known]
        if missing:
            raise NotFound(f"No memory has the id {missing[0]!r}; nothing was forgotten.")
        return len(self._forget(wanted))

    def forget_source(self, source: str) -> int:
        with self.read() as conn:
            ids = records.ids_for_source(conn, source)
        if not ids:
            raise NotFound(f"No memories come from the source {source!r}.")
        removed = self._forget(ids)
        with self.write() as conn:
            conn.execute(text("DELETE FROM sources WHERE path=:s"), {"s": source})
        return len(removed)

    def forget_returning(self, ids: Iterable[str]) -> list[Memory]:
        """Forget and return what was removed (the GUI keeps it for undo)."""
        return self._forget(list(ids))

    def _forget(self, ids: list[str]) -> list[Memory]:
        self._replay_outbox()
        with self.write() as conn:
            removed = records.delete_memories(conn, ids, tombstone=True)
            records.log_event(conn, "forget", ids=[m.id for m in removed])
        self._apply_vector_deletes()
        return removed

    def restore(self, memories: Sequence[Memory]) -> None:
        """Undo a forget: the same ids, times and sources come back (re-embedded)."""
        mems = [
            records.NewMemory(
                id=m.id,
                kind=m.kind,
                text=m.text,
                hash=records.content_hash(m.text),
                at=m.at,
                created_at=m.created_at,
                source=m.source,
                source_id=None,
                topic=m.topic,
                chunks=chunk_text(m.text, self.chunk_chars),
                sensitivity=m.sensitivity,
                speaker=m.speaker,
                session=m.session,
                context=context_text(m.text, speaker=m.speaker, session=m.session, at=m.at),
            )
            for m in memories
        ]
        self._replay_outbox()
        self.embed_new(mems)
        with self.write() as conn:
            for m in mems:
                if m.source:
                    m.source_id = conn.execute(
                        text("SELECT id FROM sources WHERE path=:p"), {"p": m.source}
                    ).scalar()
            records.insert_memories(conn, mems)
            for topic in records.topics_of(mems):
                records.recompute_topic(conn, topic)
            records.log_event(conn, "restore", ids=[m.id for m in mems])
        self.flush_vectors(mems)

    # reads ----------------------------------------------------------------------------
    def get(self, memory_id: str) -> Memory | None:
        with self.read() as conn:
            r = conn.execute(
                text(f"SELECT {records.MEMORY_COLUMNS} FROM memories WHERE id=:i"), {"i": memory_id}
            ).first()
        return records.row_to_memory(r) if r else None

    def previous_turns(self, ids: Iterable[str]) -> dict[str, Memory]:
        """The turn before each chat turn in its session: what the turn replies to (a bare
        "They were scared but OK." is an answer to the question asked just before it)."""
        out: dict[str, Memory] = {}
        with self.read() as conn:
            for memory_id in dict.fromkeys(ids):
                r = conn.execute(
                    text(
                        f"SELECT {records.MEMORY_COLUMNS} FROM memories WHERE rowid = ("
                        "SELECT max(p.rowid) FROM memories p JOIN memories m ON m.id=:i "
                        "WHERE m.session IS NOT NULL AND p.session = m.session "
                        "AND p.rowid < m.rowid)"
                    ),
                    {"i": memory_id},
                ).first()
                if r is not None:
                    out[memory_id] = records.row_to_memory(r)
        return out

    def list(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        kind: str | None = None,
        include_superseded: bool = True,
    ) -> builtins.list[Memory]:
        where: builtins.list[str] = ["1=1"]
        params: dict[str, object] = {"l": limit, "o": offset}
        if kind:
            where.append("kind=:k")
            params["k"] = kind
        if not include_superseded:
            where.append("superseded_by IS NULL")
        with self.read() as conn:
            rows = conn.execute(
                text(
                    f"SELECT {records.MEMORY_COLUMNS} FROM memories WHERE {' AND '.join(where)} "
                    "ORDER BY coalesce(at, created_at) DESC, created_at DESC LIMIT :l OFFSET :o"
                ),
                params,
            ).all()
        return [records.row_to_memory(r) for r in rows]

    def count(self) -> int:
        with self.read() as conn:
            return int(conn.execute(text("SELECT count(*) FROM memories")).scalar_one())

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        speaker: str | None = None,
        options: RetrievalOptions | None = None,
    ) -> builtins.list[SearchHit]:
        """Hybrid search. `speaker`: only turns said by that speaker (case-insensitive)."""
        q = (query or "").strip()
        if not q:
            raise BadInput("The search query is empty.")
        if k < 1 or k > 1000:
            raise BadInput("k must be between 1 and 1000.")
        self._replay_outbox()
        with self.read() as conn:
            if not conn.execute(text("SELECT 1 FROM memories LIMIT 1")).first():
                return []
            return hybrid_search(
                conn, q[:2000], k, _VectorAccess(self), speaker=speaker, options=options
            )

    def _vector_query(self, query: str, n: int) -> builtins.list[tuple[str, float]]:
        return self.vectors.query(self.embedder.embed_one(query), n)

    def iter_memories(self, *, include_superseded: bool = True) -> Iterator[Memory]:
        sql = f"SELECT {records.MEMORY_COLUMNS} FROM memories"
        if not include_superseded:
            sql += " WHERE superseded_by IS NULL"
        with self.read() as conn:
            for r in conn.execute(text(sql + " ORDER BY coalesce(at, created_at)")):
                yield records.row_to_memory(r)

    # profile --------------------------------------------------------------------------
    def profile(self) -> builtins.list[ProfileField]:
        with self.read() as conn:
            return profile_rows.list_fields(conn)

    def profile_set(
        self, key: str, value: str, *, source_memory: str | None = None
    ) -> ProfileField:
        with self.write() as conn:
            field = profile_rows.set_field(conn, key, value, source_memory)
            records.log_event(conn, "profile_set", key=field.key)
        return field

    def profile_unset(self, key: str) -> bool:
        with self.write() as conn:
            gone = profile_rows.unset_field(conn, key)
            records.log_event(conn, "profile_unset", key=key)
        return gone

    # health ---------------------------------------------------------------------------
    def health(self, *, repair: bool = False) -> dict[str, object]:
        from memory.health import check

        return check(self, repair=repair)

    def close(self) -> None:
        self.vectors.close()
        self.engine.dispose()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _utf8_ok(value: str | None) -> bool:
    """False for text with lone surrogates (undecodable bytes from argv or a JSON escape)."""
    try:
        (value or "").encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _VectorAccess:
    """What retrieval needs from the vector side: embed a query, nearest chunks, stored vectors."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def embed(self, text_: str) -> builtins.list[float]:
        return self.store.embedder.embed_one(text_)

    def query(self, embedding: Sequence[float], n: int) -> builtins.list[tuple[str, float]]:
        return self.store.vectors.query(embedding, n)

    def embeddings(self, ids: Sequence[str]) -> dict[str, builtins.list[float]]:
        return self.store.vectors.embeddings(ids)


def parse_at(value: str | None) -> datetime | None:
    """Parse an ISO 8601 `--at` value; a clear BadInput otherwise."""
    if not value:
        return None
    from memory.ingest.parsers import DateOutOfRange, parse_datetime

    try:
        return parse_datetime(value)
    except DateOutOfRange as exc:
        raise BadInput(f"{exc} Give a date between those years.") from exc
    except ValueError as exc:
        raise BadInput(
            f"{value!r} is not an ISO 8601 date or time (e.g. 2024-05-01 or 2024-05-01T09:30)."
        ) from exc


__all__ = ["MemoryStore", "parse_at", "to_iso"]
