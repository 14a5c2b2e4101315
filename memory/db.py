"""The SQLite database: engine (WAL), migrations on open, small row helpers."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DatabaseError

from memory.errors import MemoryStoreError
from memory.migrations import apply_migrations
from memory.vault import WrongPassphrase
from memory.vault_db import cipher_connect, dbapi_module


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def from_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def open_engine(db_path: Path, key: bytes | None = None) -> Engine:
    """Open (creating and migrating) the database; WAL so readers never block the writer.

    With `key` the file is SQLCipher (the vault): every connection is keyed before its first
    statement, through sqlcipher3's DB-API so SQLAlchemy maps its errors like sqlite3's.
    """
    db_path.parent.mkdir(parents=True, exist_ok=True)
    if key is None:
        engine = create_engine(
            f"sqlite:///{db_path}", connect_args={"timeout": 30, "check_same_thread": False}
        )
    else:

        def _creator() -> object:
            return cipher_connect(db_path, key, timeout=30, check_same_thread=False)

        # The file URL (not "sqlite://") keeps the file-database pool; the creator connects.
        engine = create_engine(f"sqlite:///{db_path}", module=dbapi_module(), creator=_creator)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy's transaction handling own BEGIN/COMMIT (pysqlite quirk).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Writers take the write lock up front so a stale snapshot never fails mid-transaction;
        # readers (execution option readonly=True) start deferred and never block the writer.
        readonly = conn.get_execution_options().get("readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    try:
        with engine.begin() as conn:
            apply_migrations(conn)
            conn.execute(text("SELECT count(*) FROM memories")).scalar_one()
    except DatabaseError as exc:
        engine.dispose()
        if key is not None and "not a database" in str(exc.orig):
            raise WrongPassphrase(
                f"The key does not open the encrypted database {db_path}; unlock memex again."
            ) from exc
        raise MemoryStoreError(
            f"The memory database {db_path} is damaged or not a memex database ({exc.orig}); "
            "restore it from a backup or move it away."
        ) from exc
    return engine


def read_connection(engine: Engine) -> Connection:
    """A connection for reads only (deferred transaction, no write lock)."""
    return engine.connect().execution_options(readonly=True)
