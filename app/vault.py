"""How a process gets the vault's data key: the one place every front-end goes through.

Order: a key this process holds (the desktop app or the service after an unlock), the
passphrase (`--passphrase-file`, the `passphrase_file` setting, `MEMEX_PASSPHRASE`), the
session cache that `memex vault unlock` fills ($XDG_RUNTIME_DIR, in memory, idle expiry),
the OS keyring. Nothing found while the vault is on: MemexError kind "locked".

A long-lived process (API server, service, GUI) also locks itself after
`vault_auto_lock_minutes` without memory use: `Runtime.memory` asks `idle_expired()`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from app.errors import MemexError

if TYPE_CHECKING:
    from app.settings import Settings
    from memory.vault import SessionCache

T = TypeVar("T")
SESSION_DIRNAME = "memex-vault"
PASSPHRASE_ENV = "MEMEX_PASSPHRASE"


def as_memex_error(exc: Exception) -> MemexError:
    return MemexError(str(exc), kind=getattr(exc, "kind", "vault"))


def session_cache(settings: Settings) -> SessionCache | None:
    """The in-memory folder for unlocked keys, or None where the platform has none."""
    from memory.vault import SessionCache

    base = os.environ.get("XDG_RUNTIME_DIR", "")
    if not base or not os.path.isdir(base):
        return None
    return SessionCache(Path(base) / SESSION_DIRNAME, idle_s=settings.vault_auto_lock_minutes * 60)


def read_passphrase_file(path: str | Path) -> str:
    p = Path(path).expanduser()
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise MemexError(
            f"The passphrase file {p} cannot be read ({exc.strerror}).", kind="bad_input"
        ) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MemexError(f"The passphrase file {p} is not UTF-8 text.", kind="bad_input") from exc
    # one trailing newline is what `echo` and editors add; it is not part of the passphrase
    return text[:-1] if text.endswith("\n") else text


def given_passphrase(settings: Settings) -> str | None:
    if settings.passphrase_file:
        return read_passphrase_file(settings.passphrase_file)
    env = os.environ.get(PASSPHRASE_ENV)
    return env if env else None


class VaultAccess:
    """The data key as this process knows it; `settings` is read through a callable so a
    GUI that swaps its settings object is followed."""

    def __init__(self, settings: Callable[[], Settings]) -> None:
        self._settings = settings
        self._held: bytes | None = None
        self._last_use = time.monotonic()

    @property
    def home(self) -> Path:
        return self._settings().home

    def enabled(self) -> bool:
        from memory.vault import read_vault

        try:
            return read_vault(self.home) is not None
        except Exception as exc:
            raise as_memex_error(exc) from exc

    def hold(self, key: bytes) -> None:
        """Keep `key` in this process (after an unlock screen, or handed to the service)."""
        self._held = key
        self._last_use = time.monotonic()

    def forget(self) -> None:
        self._held = None

    def key(self) -> bytes | None:
        """The data key, None when the vault is off; MemexError "locked" when nothing unlocks it."""
        if self._held is not None:
            return self._held
        from memory.errors import MemoryStoreError
        from memory.vault import unlock_key

        settings = self._settings()
        try:
            return unlock_key(
                settings.home,
                passphrase=given_passphrase(settings),
                session=session_cache(settings),
            )
        except MemoryStoreError as exc:
            raise as_memex_error(exc) from exc

    def open(self, factory: Callable[[bytes | None], T]) -> T:
        """Open something keyed (the memory store); vault errors become one-sentence MemexErrors."""
        from memory.errors import MemoryStoreError
        from memory.vault import VaultError

        key = self.key()
        try:
            opened = factory(key)
        except VaultError as exc:
            raise as_memex_error(exc) from exc
        except MemoryStoreError as exc:
            raise as_memex_error(exc) from exc
        self._last_use = time.monotonic()
        return opened

    def touch(self) -> None:
        self._last_use = time.monotonic()

    def idle_expired(self) -> bool:
        """True when this process should lock itself: the vault is on and unused for too long."""
        minutes = self._settings().vault_auto_lock_minutes
        if minutes <= 0 or time.monotonic() - self._last_use < minutes * 60:
            return False
        return self.enabled()
