"""Bridge state in bridge_dir/bridge.db (SQLite, WAL): pairings, site permissions, confirmed
sites, seen nonces and the audit log.

Several processes use it at once (a host per browser, the app, the CLI), so every change is
one short transaction. The audit log records what kind of field was filled where and when,
never a value.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from app.errors import MemexError

if TYPE_CHECKING:
    from app.settings import Settings
    from app.vault import VaultAccess

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pairings (
    client_key TEXT PRIMARY KEY, name TEXT NOT NULL, code TEXT NOT NULL,
    created_at REAL NOT NULL, last_used_at REAL, revoked_at REAL);
CREATE TABLE IF NOT EXISTS pending (
    client_key TEXT PRIMARY KEY, code TEXT NOT NULL, label TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS permissions (site TEXT PRIMARY KEY, granted_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS confirmations (
    site TEXT NOT NULL, client_key TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (site, client_key));
CREATE TABLE IF NOT EXISTS nonces (
    client_key TEXT NOT NULL, nonce TEXT NOT NULL, seen_at REAL NOT NULL,
    PRIMARY KEY (client_key, nonce));
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, action TEXT NOT NULL, site TEXT,
    pairing TEXT, kinds TEXT NOT NULL DEFAULT '[]', outcome TEXT NOT NULL DEFAULT 'ok');
"""

NONCE_WINDOW_S = 120.0  # requests older than this are refused, so older nonces can be pruned
MAX_PENDING = 20
PENDING_TTL_S = 15 * 60.0  # a pairing request the user did not approve in this time is dropped
PRUNE_EVERY = 256


class SiteError(ValueError):
    pass


def normalize_site(site: str) -> str:
    """An origin `scheme://host[:port]`; a bare host means https. Raises SiteError."""
    text = site.strip()
    if not text:
        raise SiteError("empty site")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SiteError(f"{site!r} is not an http(s) site")
    try:
        port = parts.port
    except ValueError as exc:
        raise SiteError(f"{site!r} has an invalid port") from exc
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


@dataclass(frozen=True)
class Pairing:
    client_key: str
    name: str
    code: str
    created_at: float
    last_used_at: float | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "code": self.code,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
        }


@dataclass(frozen=True)
class PendingPairing:
    client_key: str
    code: str
    label: str
    created_at: float

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "label": self.label, "created_at": self.created_at}


def _connect(path: Path, key: bytes | None) -> sqlite3.Connection:
    from memory.vault_db import cipher_connect, is_plain_sqlite

    opts: dict[str, Any] = {"timeout": 10, "isolation_level": None, "check_same_thread": False}
    exists = path.exists() and path.stat().st_size > 0
    if key is None:
        if exists and not is_plain_sqlite(path):
            raise MemexError(
                "memex is locked: the bridge state is encrypted; unlock memex first.", kind="locked"
            )
        return sqlite3.connect(path, **opts)
    tmp = path.with_name(path.name + ".vault-tmp")
    if tmp.exists() and not is_plain_sqlite(path):
        os.replace(tmp, path)  # a switch cut short after the wipe began: the copy is complete
    elif exists and is_plain_sqlite(path):
        _encrypt_in_place(path, tmp, key)
    conn: sqlite3.Connection = cipher_connect(path, key, **opts)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except Exception as exc:  # sqlcipher3's DatabaseError: another key
        conn.close()
        raise MemexError(
            "The key does not open the bridge state; unlock memex again.", kind="wrong_passphrase"
        ) from exc
    return conn


def _encrypt_in_place(path: Path, tmp: Path, key: bytes) -> None:
    """Copy a plaintext bridge.db into SQLCipher `tmp`, then wipe the plaintext and swap it in.

    Until the wipe starts the plaintext stays authoritative (a leftover copy is redone); once
    its header is zeroed the complete copy is (`_connect` finishes the rename).
    """
    from memory.vault_db import _switch, dbapi_module

    dbapi = dbapi_module()
    tmp.unlink(missing_ok=True)
    plain = dbapi.connect(str(path), isolation_level=None, timeout=10)
    try:
        plain.execute("PRAGMA journal_mode = DELETE").fetchall()  # folds the WAL in
        plain.execute(f"ATTACH DATABASE ? AS enc KEY \"x'{key.hex()}'\"", (str(tmp),))
        plain.execute("SELECT sqlcipher_export('enc')")
        plain.execute("DETACH DATABASE enc")
    except dbapi.Error as exc:
        tmp.unlink(missing_ok=True)
        raise MemexError(
            "Another memex process (a browser's bridge host or the app) is using the "
            "bridge state; close it and try again.",
            kind="busy",
        ) from exc
    finally:
        plain.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    # the same wipe-then-rename as memex.db's switch: plaintext and side files zeroed first
    _switch(path.parent, tmp, path)


def open_state(settings: Settings, vault: VaultAccess | None = None) -> BridgeState:
    """The bridge state for `settings`, keyed when the vault is on (MemexError "locked" when
    it cannot be unlocked). `vault`: a process's own VaultAccess, which may hold the key."""
    from app.vault import VaultAccess

    access = vault or VaultAccess(lambda: settings)
    return BridgeState(settings.bridge_dir, access.key() if access.enabled() else None)


class BridgeState:
    """With `key` (the vault's data key) bridge.db is SQLCipher: site and pairing names and
    the audit log are encrypted at rest; a plaintext bridge.db is encrypted on first open."""

    def __init__(self, bridge_dir: Path, key: bytes | None = None) -> None:
        bridge_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(bridge_dir, 0o700)
        except OSError:
            pass
        self.path = bridge_dir / "bridge.db"
        self._nonce_count = 0
        self._db = _connect(self.path, key)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "PRAGMA synchronous=NORMAL"
        )  # WAL + NORMAL: durable on commit order, no fsync per fill
        self._db.executescript(_SCHEMA)
        try:
            os.chmod(self.path, 0o600)
        except OSError:
            pass

    def close(self) -> None:
        self._db.close()

    def _one(self, sql: str, args: tuple[object, ...] = ()) -> tuple[object, ...] | None:
        row: tuple[object, ...] | None = self._db.execute(sql, args).fetchone()
        return row

    # -- pairing -------------------------------------------------------------------------------
    def request_pairing(self, client_key: str, code: str, label: str) -> bool:
        """Record a pairing request; False when MAX_PENDING live requests already wait.

        Requests stay until approved or PENDING_TTL_S old, and a full list refuses newcomers
        instead of dropping old entries: a flood of fresh keys cannot push out the request the
        user is about to approve. A key that is already waiting is always accepted.
        """
        now = time.time()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM pending WHERE created_at < ?", (now - PENDING_TTL_S,))
            if self._one("SELECT 1 FROM pending WHERE client_key = ?", (client_key,)) is not None:
                return True
            waiting: int = self._db.execute("SELECT count(*) FROM pending").fetchone()[0]
            if waiting >= MAX_PENDING:
                return False
            self._db.execute(
                "INSERT INTO pending (client_key, code, label, created_at) VALUES (?,?,?,?)",
                (client_key, code, label[:80], now),
            )
        return True

    def pending(self) -> list[PendingPairing]:
        rows = self._db.execute(
            "SELECT client_key, code, label, created_at FROM pending WHERE created_at >= ? "
            "ORDER BY created_at",
            (time.time() - PENDING_TTL_S,),
        )
        return [PendingPairing(*r) for r in rows]

    def approve(self, code: str, name: str) -> Pairing | None:
        row = self._one(
            "SELECT client_key, code FROM pending WHERE upper(code) = upper(?) AND created_at >= ?",
            (code, time.time() - PENDING_TTL_S),
        )
        if row is None:
            return None
        client_key, real_code = str(row[0]), str(row[1])
        now = time.time()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR REPLACE INTO pairings (client_key, name, code, created_at) "
                "VALUES (?,?,?,?)",
                (client_key, name, real_code, now),
            )
            self._db.execute("DELETE FROM pending WHERE client_key = ?", (client_key,))
        self.audit("pair", None, [], pairing=name)
        return Pairing(client_key, name, real_code, now)

    def pairing(self, client_key: str) -> Pairing | None:
        row = self._one(
            "SELECT client_key, name, code, created_at, last_used_at FROM pairings "
            "WHERE client_key = ? AND revoked_at IS NULL",
            (client_key,),
        )
        return Pairing(*row) if row else None  # type: ignore[arg-type]

    def pairings(self) -> list[Pairing]:
        rows = self._db.execute(
            "SELECT client_key, name, code, created_at, last_used_at FROM pairings "
            "WHERE revoked_at IS NULL ORDER BY created_at"
        )
        return [Pairing(*r) for r in rows]

    def revoke_pairing(self, name_or_code: str) -> int:
        cur = self._db.execute(
            "UPDATE pairings SET revoked_at = ? WHERE revoked_at IS NULL AND (name = ? OR "
            "upper(code) = upper(?))",
            (time.time(), name_or_code, name_or_code),
        )
        if cur.rowcount:
            self.audit("unpair", None, [], pairing=name_or_code)
        return cur.rowcount

    def touch(self, client_key: str) -> None:
        self._db.execute(
            "UPDATE pairings SET last_used_at = ? WHERE client_key = ?", (time.time(), client_key)
        )

    # -- sites ---------------------------------------------------------------------------------
    def permit(self, site: str) -> str:
        origin = normalize_site(site)
        self._db.execute(
            "INSERT OR IGNORE INTO permissions (site, granted_at) VALUES (?,?)",
            (origin, time.time()),
        )
        self.audit("permit", origin, [])
        return origin

    def revoke_site(self, site: str) -> int:
        origin = normalize_site(site)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            n = self._db.execute("DELETE FROM permissions WHERE site = ?", (origin,)).rowcount
            self._db.execute("DELETE FROM confirmations WHERE site = ?", (origin,))
        if n:
            self.audit("revoke", origin, [])
        return n

    def permitted(self, origin: str) -> bool:
        return self._one("SELECT 1 FROM permissions WHERE site = ?", (origin,)) is not None

    def sites(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT site FROM permissions ORDER BY site")]

    def confirmed(self, origin: str, client_key: str) -> bool:
        return (
            self._one(
                "SELECT 1 FROM confirmations WHERE site = ? AND client_key = ?",
                (origin, client_key),
            )
            is not None
        )

    def confirmations(self) -> dict[str, list[str]]:
        """site -> names of the paired browsers allowed to fill there without asking again."""
        rows = self._db.execute(
            "SELECT c.site, p.name FROM confirmations c "
            "JOIN pairings p ON p.client_key = c.client_key "
            "WHERE p.revoked_at IS NULL ORDER BY c.site, p.name"
        )
        out: dict[str, list[str]] = {}
        for site, name in rows:
            out.setdefault(site, []).append(name)
        return out

    def confirm(self, origin: str, client_key: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO confirmations (site, client_key, at) VALUES (?,?,?)",
            (origin, client_key, time.time()),
        )

    # -- replay protection ---------------------------------------------------------------------
    def use_nonce(self, client_key: str, nonce: str) -> bool:
        """Record a request nonce; False if this client already used it (a replay)."""
        now = time.time()
        # OR IGNORE + rowcount rather than catching IntegrityError: the same for sqlite3 and
        # sqlcipher3 (the vault's driver), whose exception classes differ
        cur = self._db.execute(
            "INSERT OR IGNORE INTO nonces (client_key, nonce, seen_at) VALUES (?,?,?)",
            (client_key, nonce, now),
        )
        if cur.rowcount == 0:
            return False
        self._nonce_count += 1
        if (
            self._nonce_count % PRUNE_EVERY == 0
        ):  # stale requests are refused by their time stamp anyway
            self._db.execute("DELETE FROM nonces WHERE seen_at < ?", (now - 4 * NONCE_WINDOW_S,))
        return True

    # -- audit ---------------------------------------------------------------------------------
    def audit(
        self,
        action: str,
        site: str | None,
        kinds: list[str],
        *,
        pairing: str | None = None,
        outcome: str = "ok",
    ) -> None:
        self._db.execute(
            "INSERT INTO audit (at, action, site, pairing, kinds, outcome) VALUES (?,?,?,?,?,?)",
            (time.time(), action, site, pairing, json.dumps(sorted(set(kinds))), outcome),
        )

    def audit_log(self, limit: int = 100) -> list[dict[str, object]]:
        rows = self._db.execute(
            "SELECT at, action, site, pairing, kinds, outcome FROM audit ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            {
                "at": r[0],
                "action": r[1],
                "site": r[2],
                "pairing": r[3],
                "kinds": json.loads(r[4]),
                "outcome": r[5],
            }
            for r in rows
        ]
