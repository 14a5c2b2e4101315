"""The job journal: long commands (import, train, moe moefy) leave a row while they run.

A job cut short (the service killed, the terminal closed, the machine off) must not vanish
with the process that ran it: MEMEX_HOME/jobs.sqlite keeps one row a job with its command,
how far it got and how it ended. A row still marked running whose process is gone is an
interrupted job; `memex service status` names it and the command that resumes it (an import
run again skips the files it already stored, training resumes from its last checkpoint).

The journal belongs to no store: it opens with the standard library's sqlite3, in the service
and in an in-process CLI alike, and never fails the command it records (a journal that cannot
be written is logged and left out). It holds command lines (file paths), never memory text.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.service.lock import process_alive, process_start_ticks

if TYPE_CHECKING:
    import sqlite3

log = logging.getLogger(__name__)

JOURNAL_NAME = "jobs.sqlite"
# command words -> job kind; how an unfinished one resumes when run again
JOB_COMMANDS: dict[tuple[str, ...], str] = {
    ("import",): "import",
    ("train",): "train",
    ("moe", "moefy"): "moe moefy",
}
RESUME = {
    "import": "run it again: files already imported are skipped",
    "train": "run it again: training resumes from its last checkpoint",
    "moe moefy": "run it again",
}
UNFINISHED = ("running", "interrupted")
PROGRESS_EVERY_S = 0.5  # progress rows are throttled; the first and the last always land
KEEP = 200  # rows kept; older finished jobs are dropped
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs(
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    argv TEXT NOT NULL,
    cwd TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,
    state TEXT NOT NULL,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    item TEXT NOT NULL DEFAULT '',
    exit_code INTEGER
)
"""


def journal_path(home: Path) -> Path:
    return home / JOURNAL_NAME


def job_kind(argv: Sequence[str]) -> str | None:
    """The job kind of `memex ARGV`, or None for a command that is not a long job."""
    words: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--home", "--passphrase-file"):
            skip = True
            continue
        if arg.startswith("-"):
            if arg in ("-h", "--help"):
                return None
            continue
        words.append(arg)
        if len(words) == 2:
            break
    for command, kind in JOB_COMMANDS.items():
        if tuple(words[: len(command)]) == command:
            return kind
    return None


def _connect(home: Path) -> sqlite3.Connection:
    import sqlite3

    path = journal_path(home)
    fresh = not path.exists()
    home.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    if fresh:
        os.chmod(path, 0o600)
    conn.row_factory = sqlite3.Row
    conn.execute(_SCHEMA)
    return conn


class Job:
    """One running job's row; progress and the end are written through it."""

    def __init__(self, home: Path, job_id: int) -> None:
        self.home = home
        self.id = job_id
        self._last = 0.0
        self._reported = False

    def progress(self, done: int, total: int, item: str = "") -> None:
        now = time.monotonic()
        if self._reported and now - self._last < PROGRESS_EVERY_S and done < total:
            return
        self._reported, self._last = True, now
        self._write(
            "UPDATE jobs SET done=?, total=?, item=?, updated_at=? WHERE id=?",
            (int(done), int(total), str(item)[:300], time.time(), self.id),
        )

    def finish(self, code: int) -> None:
        state = "done" if code == 0 else "cancelled" if code == 130 else "failed"
        self._write(
            "UPDATE jobs SET state=?, exit_code=?, updated_at=? WHERE id=?",
            (state, int(code), time.time(), self.id),
        )

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        try:
            with _closing(_connect(self.home)) as conn:
                conn.execute(sql, params)
        except Exception:  # noqa: BLE001 - the journal never fails the job it records
            log.warning("the job journal could not be written", exc_info=True)


@contextmanager
def _closing(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        yield conn
    finally:
        conn.close()


def begin(home: Path, kind: str, argv: Sequence[str], cwd: str, host: str) -> Job | None:
    """A row for a job starting in this process (None when the journal cannot be written)."""
    now = time.time()
    pid = os.getpid()
    try:
        with _closing(_connect(home)) as conn:
            cur = conn.execute(
                "INSERT INTO jobs(kind, argv, cwd, host, pid, start_ticks, state, started_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)",
                (kind, json.dumps(list(argv)), cwd, host, pid, process_start_ticks(pid), now, now),
            )
            job_id = int(cur.lastrowid or 0)
            conn.execute(
                "DELETE FROM jobs WHERE state NOT IN ('running', 'interrupted') AND id <= ?",
                (job_id - KEEP,),
            )
    except Exception:  # noqa: BLE001 - the journal never fails the job it records
        log.warning("the job journal could not be written", exc_info=True)
        return None
    return Job(home, job_id)


def recent(home: Path, limit: int = 10) -> list[dict[str, Any]]:
    """The newest jobs, newest first; a running row whose process died becomes interrupted."""
    if not journal_path(home).exists():
        return []
    try:
        with _closing(_connect(home)) as conn:
            for row in conn.execute("SELECT id, pid, start_ticks FROM jobs WHERE state='running'"):
                if not process_alive(int(row["pid"]), int(row["start_ticks"])):
                    conn.execute(
                        "UPDATE jobs SET state='interrupted' WHERE id=? AND state='running'",
                        (row["id"],),
                    )
            rows = conn.execute(
                "SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (max(1, limit),)
            ).fetchall()
    except Exception:  # noqa: BLE001 - status still answers without its job list
        log.warning("the job journal could not be read", exc_info=True)
        return []
    return [_public(dict(row)) for row in rows]


def _public(row: dict[str, Any]) -> dict[str, Any]:
    argv = [str(a) for a in json.loads(row["argv"])]
    shown = [a for a in argv if a != "--json"]
    job: dict[str, Any] = {
        "id": row["id"],
        "kind": row["kind"],
        "state": row["state"],
        "command": "memex " + shlex.join(shown),
        "cwd": row["cwd"],
        "host": row["host"],
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(row["started_at"])),
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(row["updated_at"])),
        "done": row["done"],
        "total": row["total"],
        "item": row["item"],
        "exit_code": row["exit_code"],
    }
    if row["state"] in UNFINISHED:
        job["resume"] = RESUME.get(str(row["kind"]), "run it again")
    return job


def describe(job: dict[str, Any]) -> str:
    """One line for a person: what ran, how far it got, and how it resumes."""
    where = f" at {job['done']}/{job['total']}" if job["total"] else ""
    line = f"{job['state']}: {job['command']}{where} (started {job['started_at']})"
    return f"{line}; {job['resume']}." if "resume" in job else f"{line}."


# -- the job a command in this thread is part of (set around it by `journaled`) ----------
CURRENT_JOB: ContextVar[Job | None] = ContextVar("memex_current_job", default=None)


def report_progress(done: int, total: int, item: str = "") -> None:
    """Called by long commands as they go; a no-op outside a journaled job."""
    job = CURRENT_JOB.get()
    if job is not None:
        job.progress(done, total, item)


@contextmanager
def journaled(home: Path, argv: Sequence[str], cwd: str, host: str) -> Iterator[Job | None]:
    """Record `memex ARGV` as a job while it runs when it is one (yields None otherwise).

    The caller reports the exit status with `job.finish(code)`; a process that dies first
    leaves the row running, which `recent` then shows as interrupted.
    """
    kind = job_kind(argv)
    job = begin(home, kind, argv, cwd, host) if kind is not None else None
    token = CURRENT_JOB.set(job)
    try:
        yield job
    finally:
        CURRENT_JOB.reset(token)


def run_local(argv: list[str], run: Callable[[list[str]], Any]) -> Any:
    """Run `memex ARGV` in this process (no service), journaled when it is a long job."""
    if job_kind(argv) is None:
        return run(argv)
    from app.service.paths import resolve_home
    from app.service.route import split_global

    home = resolve_home(split_global(argv)[0])
    with journaled(home, argv, os.getcwd(), "cli") as job:
        code = 1
        try:
            result = run(argv)
            code = 0
            return result
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            raise
        except KeyboardInterrupt:
            code = 130
            raise
        finally:
            if job is not None:
                job.finish(code)
