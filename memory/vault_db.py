"""SQLCipher for memex.db: keyed connections and the crash-safe switch from plaintext.

Enabling the vault is a sequence of steps whose only commit point is one atomic rename
(`vault.pending.json` -> `vault.json`):

    1. the wrapped key goes to vault.pending.json (the old state is untouched)
    2. the plaintext database is switched out of WAL and held with an exclusive lock
    3. sqlcipher_export copies it into memex.db.vault-tmp, which is verified page by page
       (cipher_integrity_check) and table by table (row counts)
    4. COMMIT: vault.pending.json becomes vault.json
    5. the plaintext file is overwritten with zeros (through its own descriptor) and
       memex.db.vault-tmp replaces it

`recover` runs before every keyed open and every enable: without vault.json, leftovers of
an unfinished enable are removed and the plaintext stays authoritative; with vault.json and
a verified memex.db.vault-tmp still present, steps 5 are finished. So a kill -9 at any
point loses nothing, and the plaintext is gone only after the encrypted copy verified.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from memory.vault import (
    VaultError,
    VaultFile,
    VaultLocked,
    WrongPassphrase,
    fsync_dir,
    key_matches,
    read_vault,
    starts_with,
    vault_path,
    write_vault,
)

DB_FILE = "memex.db"
PENDING_FILE = "vault.pending.json"
ENC_TMP = "memex.db.vault-tmp"
LOCK_FILE = ".vault-switch.lock"  # an flock for enable/recovery; not the vault's locked state
PLAIN_HEADER = b"SQLite format 3\x00"
SIDE_FILES = ("-wal", "-shm", "-journal")

Step = Callable[[str], None]


def _dbapi() -> Any:
    try:
        from sqlcipher3 import dbapi2
    except ImportError as exc:  # pragma: no cover - it is a core dependency
        raise VaultError("The vault needs the `sqlcipher3` package; reinstall memex.") from exc
    return dbapi2


def key_pragma(key: bytes) -> str:
    # A raw 256-bit key: SQLCipher skips its own PBKDF2, so opening a connection stays cheap
    # (the passphrase was already stretched by Argon2id once).
    return f"PRAGMA key = \"x'{key.hex()}'\""


def cipher_connect(path: Path, key: bytes, **kwargs: Any) -> Any:
    """A sqlcipher3 connection on `path` keyed before any other statement."""
    conn = _dbapi().connect(str(path), **kwargs)
    conn.execute(key_pragma(key))
    # Temporary tables and sort spills stay in memory rather than in plaintext temp files.
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn


def dbapi_module() -> Any:
    return _dbapi()


def is_plain_sqlite(path: Path) -> bool:
    return starts_with(path, PLAIN_HEADER)


@contextmanager
def vault_lock(home: Path) -> Iterator[None]:
    """Serialise enable and recovery across processes (advisory; a no-op where fcntl is missing)."""
    home.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def recover(home: Path) -> str | None:
    """Finish or roll back an interrupted enable; returns what was done (None: nothing)."""
    home = Path(home)
    pending, tmp = home / PENDING_FILE, home / ENC_TMP
    if not pending.exists() and not tmp.exists() and not (home / (ENC_TMP + "-journal")).exists():
        return None
    with vault_lock(home):
        return _recover_locked(home)


def _recover_locked(home: Path) -> str | None:
    pending, tmp, db = home / PENDING_FILE, home / ENC_TMP, home / DB_FILE
    if not vault_path(home).exists():
        # never committed: the plaintext database is still the whole truth
        found = pending.exists() or tmp.exists()
        for p in (pending, tmp, home / (ENC_TMP + "-journal")):
            _remove(p)
        fsync_dir(home)
        return "rolled back an unfinished enable" if found else None
    _remove(pending)
    if tmp.exists():
        _switch(home, tmp, db)
        return "finished an interrupted enable"
    return None


def _zero_fill(fd: int) -> None:
    size = os.fstat(fd).st_size
    block = b"\0" * (1 << 20)
    os.lseek(fd, 0, os.SEEK_SET)
    done = 0
    while done < size:
        done += os.write(fd, block[: min(len(block), size - done)])
    os.fsync(fd)


def _switch(
    home: Path, tmp: Path, db: Path, plain_fd: int | None = None, step: Step | None = None
) -> None:
    """After the commit: wipe the plaintext (and its side files), then put the encrypted copy
    in place."""
    own_fd = plain_fd is None
    # Under the vault lock, with the encrypted copy still beside it, memex.db can only be the
    # plaintext (maybe partly zeroed already): the rename below is the last step.
    if own_fd and db.exists():
        plain_fd = os.open(db, os.O_RDWR)
    try:
        if plain_fd is not None:
            _zero_fill(plain_fd)
        if step:
            step("zeroed")
        for suffix in SIDE_FILES:
            side = db.with_name(db.name + suffix)
            if side.exists():
                fd = os.open(side, os.O_RDWR)
                try:
                    _zero_fill(fd)
                finally:
                    os.close(fd)
                side.unlink()
        os.replace(tmp, db)
        _remove(home / (ENC_TMP + "-journal"))
        fsync_dir(home)
    finally:
        if own_fd and plain_fd is not None:
            os.close(plain_fd)


def _counts(conn: Any) -> dict[str, int]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
            "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'"
        )
    ]
    return {n: int(conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n in names}


def encrypt_database(
    home: Path, key: bytes, vf: VaultFile, step: Step | None = None
) -> dict[str, int]:
    """Turn the plaintext memex.db (if any) into SQLCipher under `key` and commit `vf`.

    Returns the verified row counts. Raises VaultError when the vault is already on or
    another process holds the database.
    """
    home = Path(home)
    mark = step or (lambda _name: None)
    with vault_lock(home):
        _recover_locked(home)
        if read_vault(home) is not None:
            raise VaultError(
                "The vault is already on; use `memex vault change-passphrase` to change it."
            )
        db, tmp, pending = home / DB_FILE, home / ENC_TMP, home / PENDING_FILE
        write_vault(pending, vf)
        mark("pending")
        dbapi = _dbapi()
        plain = dbapi.connect(str(db), isolation_level=None, timeout=5)
        plain_fd: int | None = None
        try:
            try:
                plain.execute("PRAGMA busy_timeout = 5000")
                # Leaving WAL checkpoints everything into the main file and needs every other
                # connection closed; the exclusive lock then keeps writers out until the switch.
                plain.execute("PRAGMA journal_mode = DELETE").fetchall()
                plain.execute("PRAGMA locking_mode = EXCLUSIVE")
                plain.execute("BEGIN EXCLUSIVE")
                plain.execute("COMMIT")
            except dbapi.OperationalError as exc:
                raise VaultError(
                    "Another memex process (the app or the service) is using the "
                    "database; close it and enable the vault again."
                ) from exc
            mark("locked")
            _remove(tmp)
            plain.execute(f"ATTACH DATABASE ? AS enc KEY \"x'{key.hex()}'\"", (str(tmp),))
            plain.execute("SELECT sqlcipher_export('enc')")
            version = plain.execute("PRAGMA main.user_version").fetchone()[0]
            plain.execute(f"PRAGMA enc.user_version = {int(version)}")
            plain.execute("DETACH DATABASE enc")
            mark("exported")
            want = _counts(plain)
            got = verify(tmp, key)
            if got != want:
                raise VaultError(
                    f"The encrypted copy does not match the database ({got} != {want}); "
                    "nothing was changed."
                )
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            mark("verified")
            if db.exists():
                plain_fd = os.open(db, os.O_RDWR)
            os.replace(pending, vault_path(home))
            fsync_dir(home)
            mark("committed")
        except BaseException:
            plain.close()
            if plain_fd is not None:
                os.close(plain_fd)
            if not vault_path(home).exists():
                for p in (pending, tmp, home / (ENC_TMP + "-journal")):
                    _remove(p)
            raise
        try:
            _switch(home, tmp, db, plain_fd, mark)
        finally:
            if plain_fd is not None:
                os.close(plain_fd)
            plain.close()
        mark("switched")
        return want


def verify(path: Path, key: bytes) -> dict[str, int]:
    """Open an encrypted database, check every page's HMAC and the b-trees; return row counts."""
    conn = cipher_connect(path, key)
    try:
        bad = conn.execute("PRAGMA cipher_integrity_check").fetchall()
        if bad:
            raise VaultError(
                f"The encrypted database {path.name} failed its integrity check ({bad[0][0]})."
            )
        quick = conn.execute("PRAGMA quick_check").fetchone()[0]
        if quick != "ok":
            raise VaultError(
                f"The encrypted database {path.name} failed its integrity check ({quick})."
            )
        return _counts(conn)
    except _dbapi().DatabaseError as exc:
        raise VaultError(
            f"The encrypted database {path.name} cannot be read with this key ({exc})."
        ) from exc
    finally:
        conn.close()


def check_open(home: Path, key: bytes | None) -> bool:
    """Before the store opens: finish any interrupted enable, then refuse when locked.

    Returns whether the database is encrypted. Raises VaultLocked (no key) or
    WrongPassphrase (a key that is not this vault's).
    """
    recover(home)
    vf = read_vault(home)
    if vf is None:
        return False
    if key is None:
        raise VaultLocked(
            "memex is locked: run `memex vault unlock`, or give the passphrase with "
            "MEMEX_PASSPHRASE or --passphrase-file."
        )
    if not key_matches(vf, key):
        raise WrongPassphrase("The key does not open this memex vault; unlock it again.")
    return True
