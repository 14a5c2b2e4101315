"""The vault's keys and the encrypted store: real Argon2id, real SQLCipher, real chromadb."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from memory import vault
from memory.vault_db import ENC_TMP, PENDING_FILE, encrypt_database, is_plain_sqlite

PASS = "correct horse battery"


def _leaks(home: Path, needles: list[bytes]) -> list[str]:
    found = []
    for p in home.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            found += [f"{p.relative_to(home)}: {n.decode()}" for n in needles if n in data]
    return found


def test_wrap_unwrap_and_wrong_passphrase():
    key = vault.new_data_key()
    vf = vault.wrap_key(key, PASS)
    assert vf.kdf is not None and vf.kdf.memory_kib >= 65536 and vf.kdf.time_cost >= 3
    assert vault.unwrap_key(vf, PASS) == key
    with pytest.raises(vault.WrongPassphrase, match="wrong; nothing was changed"):
        vault.unwrap_key(vf, "not the passphrase")
    assert vault.key_matches(vf, key) and not vault.key_matches(vf, vault.new_data_key())
    again = vault.wrap_key(key, "another passphrase", key_id=vf.key_id)
    assert again.salt != vf.salt and vault.unwrap_key(again, "another passphrase") == key
    with pytest.raises(vault.VaultError, match="shorter than 8"):
        vault.wrap_key(key, "short")
    with pytest.raises(ValueError):
        vault.KdfParams(memory_kib=1024)


def test_sealed_files_are_authenticated(tmp_path):
    key = vault.new_data_key()
    path = tmp_path / "data.bin"
    vault.write_sealed(path, key, b"my home address is 12 Quokka Lane")
    assert vault.is_sealed(path) and b"Quokka" not in path.read_bytes()
    assert vault.read_sealed(path, key) == b"my home address is 12 Quokka Lane"
    with pytest.raises(vault.WrongPassphrase):
        vault.read_sealed(path, vault.new_data_key())
    tampered = bytearray(path.read_bytes())
    tampered[-1] ^= 1
    path.write_bytes(bytes(tampered))
    with pytest.raises(vault.WrongPassphrase):
        vault.read_sealed(path, key)


def test_session_cache_expires_when_idle(tmp_path):
    cache = vault.SessionCache(tmp_path / "run", idle_s=60)
    key = vault.new_data_key()
    cache.put("abc", key)
    assert cache.get("abc") == key
    assert oct((tmp_path / "run" / "abc.key").stat().st_mode & 0o777) == "0o600"
    old = time.time() - 120
    os.utime(tmp_path / "run" / "abc.key", (old, old))
    assert cache.get("abc") is None and not (tmp_path / "run" / "abc.key").exists()
    cache.put("abc", key)
    assert cache.clear("abc") and cache.get("abc") is None


def test_encrypted_store_searches_and_leaks_nothing(memex_home, embedder):
    from memory import MemoryStore

    sentinels = [f"ZQX{i}SENTINEL{i * 7919}" for i in range(4)]
    with MemoryStore(memex_home, embedder=embedder) as s:
        s.remember(f"My passport number is {sentinels[0]}.")
        s.remember(f"I live at {sentinels[1]} street.")
        s.profile_set("email", f"{sentinels[2]}@example.org")
    key = vault.new_data_key()
    counts = encrypt_database(memex_home, key, vault.wrap_key(key, PASS))
    assert counts["memories"] == 2
    assert not is_plain_sqlite(memex_home / "memex.db")

    with pytest.raises(vault.VaultLocked, match="memex is locked"):
        MemoryStore(memex_home, embedder=embedder)
    with pytest.raises(vault.WrongPassphrase):
        MemoryStore(memex_home, embedder=embedder, key=vault.new_data_key())

    with MemoryStore(memex_home, embedder=embedder, key=key) as s:
        assert s.encrypted
        hits = s.search("what is my passport number", k=3)
        assert sentinels[0] in hits[0].text  # FTS5 and vectors both work on the encrypted file
        s.remember(f"The dentist is Dr. {sentinels[3]}.")
        with s.read() as conn:
            fts = conn.execute(
                text("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'dentist'")
            ).scalar()
        assert fts == 1
        assert _leaks(memex_home, [x.encode() for x in sentinels]) == []  # -wal open, chroma too
    assert _leaks(memex_home, [x.encode() for x in sentinels]) == []


@pytest.mark.parametrize(
    "fail_at", ["pending", "locked", "exported", "verified", "committed", "zeroed"]
)
def test_enable_interrupted_anywhere_loses_nothing(memex_home, fail_at):
    """An exception at each step (kill -9 is in tests/app/test_vault_cli.py): the data survives
    and the next open or enable finishes the job."""
    import sqlite3

    from memory.vault_db import check_open, recover, verify

    memex_home.mkdir(parents=True)  # a plaintext database with real content, WAL like memex's
    conn = sqlite3.connect(memex_home / "memex.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE memories (id TEXT, text TEXT)")
    conn.executemany(
        "INSERT INTO memories VALUES (?, ?)", [(str(i), f"note {i}") for i in range(50)]
    )
    conn.commit()
    conn.close()

    class Boom(Exception):
        pass

    def step(name: str) -> None:
        if name == fail_at:
            raise Boom(name)

    key = vault.new_data_key()
    vf = vault.wrap_key(key, PASS)
    with pytest.raises(Boom):
        encrypt_database(memex_home, key, vf, step)
    recover(memex_home)
    assert not (memex_home / PENDING_FILE).exists() and not (memex_home / ENC_TMP).exists()
    if vault.read_vault(memex_home) is None:  # before the commit: still plaintext, enable again
        assert is_plain_sqlite(memex_home / "memex.db")
        encrypt_database(memex_home, key, vf)
    assert check_open(memex_home, key) is True
    assert verify(memex_home / "memex.db", key)["memories"] == 50
    assert _leaks(memex_home, [b"note 1"]) == []


def test_keyring_store(memex_home, monkeypatch):
    """The key in the OS keyring (an in-memory backend stands in for Secret Service/Keychain)."""
    import keyring
    from keyring.backend import KeyringBackend

    class MemoryKeyring(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            super().__init__()
            self.items: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.items.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.items[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.items.pop((service, username), None)

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        key = vault.new_data_key()
        vf = vault.keyring_vault(key)
        vault.keyring_put(vf.key_id, key)
        memex_home.mkdir(parents=True)
        encrypt_database(memex_home, key, vf)
        assert vault.unlock_key(memex_home) == key  # no passphrase needed
        backend.items.clear()
        with pytest.raises(vault.VaultLocked, match="keyring does not hold"):
            vault.unlock_key(memex_home)
    finally:
        keyring.set_keyring(previous)
