"""Ordered, named schema migrations (applied once each, recorded in `_migrations`).

Append new migrations at the end; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, text


def m001_core_tables(conn: Connection) -> None:
    for stmt in (
        """CREATE TABLE sources (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            content_hash TEXT NOT NULL,
            type TEXT NOT NULL,
            imported_at TEXT NOT NULL
        )""",
        """CREATE TABLE memories (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            text TEXT NOT NULL,
            content_hash TEXT NOT NULL UNIQUE,
            at TEXT,
            created_at TEXT NOT NULL,
            source TEXT,
            source_id INTEGER REFERENCES sources(id) ON DELETE CASCADE,
            sensitivity TEXT NOT NULL DEFAULT 'normal',
            superseded_by TEXT,
            topic TEXT
        )""",
        "CREATE INDEX ix_memories_source ON memories(source)",
        "CREATE INDEX ix_memories_source_id ON memories(source_id)",
        "CREATE INDEX ix_memories_topic ON memories(topic)",
        "CREATE INDEX ix_memories_created ON memories(created_at)",
        """CREATE TABLE chunks (
            id INTEGER PRIMARY KEY,
            memory_id TEXT NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
            ord INTEGER NOT NULL,
            text TEXT NOT NULL,
            UNIQUE(memory_id, ord)
        )""",
        """CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, content='chunks', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        )""",
        """CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
        END""",
        """CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END""",
        """CREATE TRIGGER chunks_au AFTER UPDATE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
            INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
        END""",
        """CREATE TABLE profile_fields (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            source_memory TEXT,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'
        )""",
        # Pending vector-store operations: written in the same SQLite transaction as the
        # records, cleared after chromadb has applied them; replayed on open (crash repair).
        """CREATE TABLE vector_outbox (
            vector_id TEXT PRIMARY KEY,
            op TEXT NOT NULL CHECK (op IN ('upsert', 'delete'))
        )""",
        # Content forgotten by the user: never re-imported silently.
        """CREATE TABLE tombstones (
            content_hash TEXT PRIMARY KEY,
            forgotten_at TEXT NOT NULL
        )""",
    ):
        conn.execute(text(stmt))


def m002_inbox_items(conn: Connection) -> None:
    """The profile review inbox (memory/inbox.py): proposed values awaiting accept/reject."""
    conn.execute(
        text("""CREATE TABLE inbox_items (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        previous_value TEXT,
        source_memory TEXT REFERENCES memories(id) ON DELETE CASCADE,
        memory_at TEXT,
        confidence REAL NOT NULL,
        method TEXT NOT NULL DEFAULT 'pattern',
        evidence TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'accepted', 'rejected', 'superseded')),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (key, value, source_memory)
    )""")
    )
    conn.execute(text("CREATE INDEX ix_inbox_status ON inbox_items(status, key)"))
    conn.execute(text("CREATE INDEX ix_inbox_source ON inbox_items(source_memory)"))


def m003_chat_turns(conn: Connection) -> None:
    """Chat turns: who said it and in which conversation/session (both optional)."""
    conn.execute(text("ALTER TABLE memories ADD COLUMN speaker TEXT"))
    conn.execute(text("ALTER TABLE memories ADD COLUMN session TEXT"))
    conn.execute(text("CREATE INDEX ix_memories_speaker ON memories(speaker)"))
    conn.execute(text("CREATE INDEX ix_memories_session ON memories(session, at)"))


def m004_session_units(conn: Connection) -> None:
    """Session summaries: extractive units over consecutive chat turns (memory/summaries.py)."""
    for stmt in (
        """CREATE TABLE session_units (
            id INTEGER PRIMARY KEY,
            session TEXT NOT NULL,
            ord INTEGER NOT NULL,
            text TEXT NOT NULL,
            turn_ids TEXT NOT NULL,
            at TEXT,
            UNIQUE(session, ord)
        )""",
        """CREATE VIRTUAL TABLE session_units_fts USING fts5(
            text, content='session_units', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        )""",
        """CREATE TRIGGER session_units_ai AFTER INSERT ON session_units BEGIN
            INSERT INTO session_units_fts(rowid, text) VALUES (new.id, new.text);
        END""",
        """CREATE TRIGGER session_units_ad AFTER DELETE ON session_units BEGIN
            INSERT INTO session_units_fts(session_units_fts, rowid, text)
                VALUES ('delete', old.id, old.text);
        END""",
    ):
        conn.execute(text(stmt))
    # Chat turns stored before this migration get their units now.
    from memory import summaries

    summaries.rebuild(
        conn,
        [
            r[0]
            for r in conn.execute(
                text("SELECT DISTINCT session FROM memories WHERE session IS NOT NULL")
            )
        ],
    )


def m005_memory_dates(conn: Connection) -> None:
    """Dates a memory's text mentions ("last Friday", "in May 2023"), resolved at write time."""
    conn.execute(
        text("""CREATE TABLE memory_dates (
        memory_id TEXT NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
        start_date TEXT NOT NULL,
        end_date TEXT NOT NULL
    )""")
    )
    conn.execute(text("CREATE INDEX ix_memory_dates_memory ON memory_dates(memory_id)"))


def m006_turn_context(conn: Connection) -> None:
    """Each chat turn indexed with its neighbours' words (memory/summaries.py: context index)."""
    for stmt in (
        """CREATE TABLE turn_context (
            id INTEGER PRIMARY KEY,
            memory_id TEXT NOT NULL,
            session TEXT NOT NULL,
            text TEXT NOT NULL,
            prev TEXT NOT NULL,
            next TEXT NOT NULL
        )""",
        "CREATE INDEX ix_turn_context_session ON turn_context(session)",
        """CREATE VIRTUAL TABLE turn_context_fts USING fts5(
            text, prev, next, content='turn_context', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        )""",
        """CREATE TRIGGER turn_context_ai AFTER INSERT ON turn_context BEGIN
            INSERT INTO turn_context_fts(rowid, text, prev, next)
            VALUES (new.id, new.text, new.prev, new.next);
        END""",
        """CREATE TRIGGER turn_context_ad AFTER DELETE ON turn_context BEGIN
            INSERT INTO turn_context_fts(turn_context_fts, rowid, text, prev, next)
            VALUES ('delete', old.id, old.text, old.prev, old.next);
        END""",
    ):
        conn.execute(text(stmt))
    from memory import summaries

    summaries.rebuild_context(conn, [r[0] for r in conn.execute(
        text("SELECT DISTINCT session FROM memories WHERE session IS NOT NULL"))])


MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("m001_core_tables", m001_core_tables),
    ("m002_inbox_items", m002_inbox_items),
    ("m003_chat_turns", m003_chat_turns),
    ("m004_session_units", m004_session_units),
    ("m005_memory_dates", m005_memory_dates),
    ("m006_turn_context", m006_turn_context),
]


def apply_migrations(conn: Connection) -> list[str]:
    """Apply pending migrations in order inside the caller's transaction; return their names."""
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS _migrations "
            "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
    )
    done = {row[0] for row in conn.execute(text("SELECT name FROM _migrations"))}
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        fn(conn)
        conn.execute(
            text("INSERT INTO _migrations(name, applied_at) VALUES (:n, :t)"),
            {"n": name, "t": datetime.now(UTC).isoformat()},
        )
        applied.append(name)
    return applied
