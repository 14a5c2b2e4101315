"""The service lock: one service (one writer) per data folder, and stale-lock detection.

The lock is an flock on `service.lock`, which the kernel drops when the holder dies, even by
kill -9. The file also records the holder's pid and start time, so `status` can name it and
a client can tell a live owner from a recycled pid (Linux: /proc/PID/stat field 22).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import NamedTuple


class LockOwner(NamedTuple):  # not a dataclass: the thin client imports this module (inspect)
    pid: int
    start_ticks: int  # the process start time in clock ticks since boot (0 where unknown)
    version: str
    started_at: float  # wall clock, for status

    def alive(self) -> bool:
        return process_alive(self.pid, self.start_ticks)


def process_start_ticks(pid: int) -> int:
    """The kernel's start time of `pid` (0 where /proc is not available)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return 0


def process_alive(pid: int, start_ticks: int = 0) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if start_ticks and process_start_ticks(pid) not in (0, start_ticks):
        return False  # the pid was recycled by another process
    state = _proc_state(pid)
    return state not in ("Z", "X")  # a zombie holds no lock and serves nothing


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return ""


class ServiceLock:
    """Held by the running service for its whole life."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, version: str) -> bool:
        """Take the lock without waiting; False when a live service holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        for attempt in range(4):  # a client's probe holds a shared lock for microseconds
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if attempt == 3:
                    os.close(fd)
                    return False
                time.sleep(0.05)
        owner = LockOwner(os.getpid(), process_start_ticks(os.getpid()), version, time.time())
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner._asdict()).encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def lock_held(path: Path) -> bool:
    """Whether some process holds the service lock now (stale files after kill -9 do not count)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's own shared lock
    return False


def read_owner(path: Path) -> LockOwner | None:
    """The recorded holder, if the lock is held and the recorded process is that holder."""
    if not lock_held(path):
        return None
    try:
        data = json.loads(path.read_text() or "{}")
        owner = LockOwner(
            int(data["pid"]),
            int(data.get("start_ticks", 0)),
            str(data.get("version", "")),
            float(data.get("started_at", 0.0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return owner if owner.alive() else None
