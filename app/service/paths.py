"""Where the service lives inside MEMEX_HOME, and what a client must match to use it.

Everything here is light (standard library and platformdirs): the thin client imports it
before it knows whether it will run anything in-process.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SOCKET_NAME = "service.sock"
LOCK_NAME = "service.lock"
LOG_NAME = "service.log"
PROTOCOL = 1
# Environment that never reaches the settings: it must not force a restart when it differs.
_NOT_SETTINGS = ("MEMEX_HOME", "MEMEX_NO_SERVICE", "MEMEX_SERVICE_")
# The code whose change makes a running service stale (its protocol and how it runs commands).
# Not all of memex: in a working tree every edit would restart it; a release bump covers the rest.
_PACKAGES = ("app/service",)


def resolve_home(home: str | None) -> Path:
    """The data folder a command would use: --home, else $MEMEX_HOME, else the user data dir.

    Mirrors app.settings.default_home without importing pydantic.
    """
    if home:
        return Path(home).expanduser().absolute()
    env = os.environ.get("MEMEX_HOME")
    if env:
        return Path(env).expanduser().absolute()
    from platformdirs import user_data_dir

    return Path(user_data_dir("memex", appauthor=False)).absolute()


def socket_path(home: Path) -> Path:
    return home / SOCKET_NAME


@contextmanager
def short_address(path: Path) -> Iterator[str]:
    """AF_UNIX paths are limited to ~107 bytes; deep folders go through /proc/self/fd
    (the address is resolved once, by bind or connect, inside the block)."""
    text = str(path)
    if len(text.encode()) < 100 or not Path("/proc/self/fd").is_dir():
        yield text
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def lock_path(home: Path) -> Path:
    return home / LOCK_NAME


def log_path(home: Path) -> Path:
    return home / LOG_NAME


def service_version() -> str:
    """What a client and the service must agree on: the release and a stamp of the code.

    Read without importlib.metadata (its import alone costs more than a warm command): the
    release from the installed dist-info's name, the stamp from the service's newest source
    file, so a service still running code that was since upgraded or edited counts as older.
    """
    override = os.environ.get("MEMEX_SERVICE_VERSION")
    if override:
        return override
    return f"{_release()}+{_code_stamp()}/p{PROTOCOL}"


def _release() -> str:
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith("memex-") and name.endswith(".dist-info"):
                return name[len("memex-") : -len(".dist-info")]
    return "0"


def _code_stamp() -> str:
    root = Path(__file__).resolve().parents[2]
    newest = 0
    for package in _PACKAGES:
        for folder, dirs, files in os.walk(root / package):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if name.endswith(".py"):
                    try:
                        newest = max(newest, os.stat(os.path.join(folder, name)).st_mtime_ns)
                    except OSError:
                        pass
    return format(newest // 1_000_000, "x")


def settings_fingerprint(env: dict[str, str] | None = None) -> str:
    """A digest of the MEMEX_* settings in the environment (the service's settings come from
    the environment it was started with, so a client with other values needs another one)."""
    env = dict(os.environ if env is None else env)
    items = sorted(
        (k, v) for k, v in env.items() if k.startswith("MEMEX_") and not k.startswith(_NOT_SETTINGS)
    )
    return format(zlib.crc32(repr(items).encode()), "08x")


def service_disabled() -> bool:
    return os.environ.get("MEMEX_NO_SERVICE", "").strip().lower() in {"1", "true", "yes", "on"}


def python_executable() -> str:
    return sys.executable
