"""`memex vault enable | lock | unlock | change-passphrase | status`: encryption at rest.

The passphrase comes from `--passphrase-file F` (the command's or memex's own), from
MEMEX_PASSPHRASE (MEMEX_NEW_PASSPHRASE for change-passphrase's new one), or from a hidden
prompt when there is a terminal. Scripts never need a terminal.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from app.commands._common import AppContext, memex_command
from app.errors import MemexError

# Crash-safety tests kill the command with SIGKILL at a named step (see memory/vault_db.py).
TEST_KILL_ENV = "MEMEX_VAULT_TEST_KILL_AT"
NEW_PASSPHRASE_ENV = "MEMEX_NEW_PASSPHRASE"


@click.group("vault")
def vault() -> None:
    """Encryption at rest: the database is SQLCipher under a key your passphrase unlocks."""


def _step(name: str) -> None:
    if os.environ.get(TEST_KILL_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _passphrase(
    obj: AppContext, file: str | None, *, env: str, prompt: str, confirm: bool = False
) -> str:
    from app.vault import read_passphrase_file

    if file:
        return read_passphrase_file(file)
    if env == "MEMEX_PASSPHRASE" and obj.settings.passphrase_file:
        return read_passphrase_file(obj.settings.passphrase_file)
    if os.environ.get(env):
        return os.environ[env]
    if not _interactive():
        raise MemexError(
            f"No passphrase given: use --passphrase-file F or set {env}.", kind="no_passphrase"
        )
    value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
    return value


def _stop_service(home: Path) -> None:
    """A running service holds the open database (and maybe the key): it must let go first."""
    try:
        from app.service.client import stop
    except ImportError:  # a build without the service
        return
    try:
        stop(home)
    except Exception:  # nothing listening, or it already went away
        pass


def _mem_error(exc: Exception) -> MemexError:
    from app.vault import as_memex_error

    return as_memex_error(exc)


@memex_command("enable", group=vault)
@click.option(
    "--passphrase-file",
    "file_",
    default=None,
    type=click.Path(dir_okay=False),
    help="Read the new passphrase from this file.",
)
@click.option(
    "--keyring",
    "use_keyring",
    is_flag=True,
    default=False,
    help="Keep the key in the OS keyring instead of behind a passphrase.",
)
def enable(obj: AppContext, file_: str | None, use_keyring: bool) -> dict[str, Any]:
    """Encrypt memex.db in place (crash-safe) and turn the vault on."""
    from memory import vault as v
    from memory.errors import MemoryStoreError
    from memory.vault_db import encrypt_database

    home = obj.settings.ensure_home()
    try:
        if v.read_vault(home) is not None:
            raise MemexError(
                "The vault is already on; use `memex vault change-passphrase` to change it.",
                kind="vault_on",
            )
        key = v.new_data_key()
        if use_keyring:
            vf = v.keyring_vault(key)
            v.keyring_put(vf.key_id, key)
        else:
            vf = v.wrap_key(
                key,
                _passphrase(
                    obj, file_, env="MEMEX_PASSPHRASE", prompt="New vault passphrase", confirm=True
                ),
            )
        _stop_service(home)
        counts = encrypt_database(home, key, vf, _step)
    except MemoryStoreError as exc:
        raise _mem_error(exc) from exc
    _seal_the_rest(obj, key)
    unlocked = _remember_unlocked(obj, vf.key_id, key)
    return {
        "enabled": True,
        "store": vf.store,
        "database": "encrypted",
        "memories": counts.get("memories", 0),
        "unlocked": unlocked,
    }


def _seal_the_rest(obj: AppContext, key: bytes) -> None:
    """After the commit: adapters trained before the vault and the bridge state get sealed
    too. Each step is crash-safe on its own and is redone by later keyed use if cut short."""
    from app.adapters import seal_at_rest
    from app.bridge.state import BridgeState

    seal_at_rest(obj.settings, key)
    if (obj.settings.bridge_dir / "bridge.db").exists():
        try:
            BridgeState(obj.settings.bridge_dir, key).close()  # a keyed open encrypts it in place
        except MemexError:  # a browser's host holds it: its next keyed open encrypts it
            pass


def _remember_unlocked(obj: AppContext, key_id: str, key: bytes) -> bool:
    from app.vault import session_cache

    cache = session_cache(obj.settings)
    if cache is None:
        return False
    cache.put(key_id, key)
    return True


def _vault_file(home: Path) -> Any:
    from memory.errors import MemoryStoreError
    from memory.vault import read_vault
    from memory.vault_db import recover

    try:
        recover(home)  # finish (or roll back) an enable that was interrupted
        vf = read_vault(home)
    except MemoryStoreError as exc:
        raise _mem_error(exc) from exc
    if vf is None:
        raise MemexError(
            "The vault is off; turn it on with `memex vault enable`.", kind="vault_off"
        )
    return vf


@memex_command("unlock", group=vault)
@click.option(
    "--passphrase-file",
    "file_",
    default=None,
    type=click.Path(dir_okay=False),
    help="Read the passphrase from this file.",
)
def unlock(obj: AppContext, file_: str | None) -> dict[str, Any]:
    """Unlock memex for this login session (until `memex vault lock` or the idle time)."""
    from app.vault import session_cache
    from memory.errors import MemoryStoreError
    from memory.vault import unwrap_key

    vf = _vault_file(obj.settings.home)
    if vf.store == "keyring":
        return {
            "unlocked": True,
            "store": "keyring",
            "note": "The OS keyring holds the key; memex is unlocked while your keyring is.",
        }
    cache = session_cache(obj.settings)
    if cache is None:
        raise MemexError(
            "This system has no private in-memory folder ($XDG_RUNTIME_DIR) to keep the key "
            "between commands; give the passphrase to each command instead.",
            kind="no_session",
        )
    try:
        key = unwrap_key(
            vf, _passphrase(obj, file_, env="MEMEX_PASSPHRASE", prompt="Vault passphrase")
        )
    except MemoryStoreError as exc:
        raise _mem_error(exc) from exc
    cache.put(vf.key_id, key)
    return {
        "unlocked": True,
        "store": vf.store,
        "auto_lock_minutes": obj.settings.vault_auto_lock_minutes,
    }


@memex_command("lock", group=vault)
def lock(obj: AppContext) -> dict[str, Any]:
    """Forget the unlocked key now (the service lets go of it too)."""
    from app.vault import session_cache

    vf = _vault_file(obj.settings.home)
    cache = session_cache(obj.settings)
    was = cache.clear(vf.key_id) if cache is not None else False
    _stop_service(obj.settings.home)
    payload: dict[str, Any] = {"locked": True, "was_unlocked": was}
    if vf.store == "keyring":
        payload["note"] = "The OS keyring still holds the key; lock your keyring to lock memex."
    return payload


@memex_command("change-passphrase", group=vault)
@click.option(
    "--passphrase-file",
    "file_",
    default=None,
    type=click.Path(dir_okay=False),
    help="Read the current passphrase from this file.",
)
@click.option(
    "--new-passphrase-file",
    "new_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Read the new passphrase from this file.",
)
def change_passphrase(obj: AppContext, file_: str | None, new_file: str | None) -> dict[str, Any]:
    """Rewrap the data key under a new passphrase (nothing else is rewritten)."""
    from memory import vault as v
    from memory.errors import MemoryStoreError

    home = obj.settings.home
    vf = _vault_file(home)
    if vf.store != "passphrase":
        raise MemexError(
            "This vault keeps its key in the OS keyring; it has no passphrase to change.",
            kind="vault_keyring",
        )
    try:
        key = v.unwrap_key(
            vf, _passphrase(obj, file_, env="MEMEX_PASSPHRASE", prompt="Current passphrase")
        )
        new = _passphrase(
            obj, new_file, env=NEW_PASSPHRASE_ENV, prompt="New passphrase", confirm=True
        )
        new_vf = v.wrap_key(key, new, key_id=vf.key_id, created_at=vf.created_at)
        _step("rewrapped")
        v.write_vault(v.vault_path(home), new_vf)  # atomic: the old file or the new one, never half
    except MemoryStoreError as exc:
        raise _mem_error(exc) from exc
    _step("replaced")
    return {"changed": True}


# Files that can hold memory text: with the vault on they are sealed or SQLCipher (training
# sets, bridge state) or kept out of the data folder (training work); status names any that
# are still in the clear (left from before the vault, or written by an older memex).
NOT_YET_SEALED = ("adapters/**/dataset.jsonl", "adapters/.work/**/*", "bridge/bridge.db", "*.log")


def _in_clear(p: Path) -> bool:
    from memory.vault import is_sealed
    from memory.vault_db import is_plain_sqlite

    return is_plain_sqlite(p) if p.name.endswith(".db") else not is_sealed(p)


def unencrypted_files(home: Path, limit: int = 20) -> list[str]:
    found: list[str] = []
    for pattern in NOT_YET_SEALED:
        for p in sorted(home.glob(pattern)):
            if p.is_file() and p.stat().st_size and _in_clear(p) and len(found) < limit:
                found.append(str(p.relative_to(home)))
    return found


@memex_command("status", group=vault)
def status(obj: AppContext) -> dict[str, Any]:
    """Whether the vault is on, where its key lives, and whether memex is unlocked now."""
    from app.vault import VaultAccess
    from memory.errors import MemoryStoreError
    from memory.vault import read_vault
    from memory.vault_db import DB_FILE, is_plain_sqlite, recover

    home = obj.settings.home
    try:
        recover(home)
        vf = read_vault(home)
    except MemoryStoreError as exc:
        raise _mem_error(exc) from exc
    db = home / DB_FILE
    database = "missing" if not db.exists() else ("plain" if is_plain_sqlite(db) else "encrypted")
    if vf is None:
        return {"enabled": False, "locked": False, "database": database}
    locked = False
    try:
        VaultAccess(lambda: obj.settings).key()
    except MemexError as exc:
        if exc.kind != "locked":
            raise
        locked = True
    return {
        "enabled": True,
        "store": vf.store,
        "locked": locked,
        "database": database,
        "auto_lock_minutes": obj.settings.vault_auto_lock_minutes,
        "created_at": vf.created_at,
        "unencrypted": unencrypted_files(home),
        "kdf": None
        if vf.kdf is None
        else {"name": "argon2id", "time_cost": vf.kdf.time_cost, "memory_kib": vf.kdf.memory_kib},
    }
