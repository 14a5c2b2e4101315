"""Background work for the GUI: jobs on a QThreadPool that report through Qt signals.

Rule: a job's function runs on a pool thread and never touches a widget. It talks to the
GUI only through its `JobSignals`, whose slots Qt queues onto the GUI thread. Cancellation
is cooperative: the function receives a `JobContext` and checks `ctx.cancelled`.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from app.errors import MemexError


class JobSignals(QObject):
    progress = Signal(object)  # any plain value (ImportProgress, a training event dict...)
    chunk = Signal(str)  # streamed text pieces
    done = Signal(object)  # the function's return value
    failed = Signal(str)  # one sentence for the user
    finished = Signal()  # always last, after done/failed


class JobContext:
    """What a job function may use: report progress, stream text, check for cancel."""

    def __init__(self, signals: JobSignals, cancel_event: threading.Event) -> None:
        self._signals = signals
        self._cancel = cancel_event

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def progress(self, value: Any) -> None:
        self._signals.progress.emit(value)

    def chunk(self, text: str) -> None:
        self._signals.chunk.emit(text)


def user_message(exc: BaseException) -> str:
    """One sentence for the user: our own errors carry one; anything else gets its type."""
    if isinstance(exc, MemexError):
        return exc.message
    text = str(exc).strip()
    if type(exc).__module__.startswith(("memory", "inference", "finetune", "app")) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Job(QRunnable):
    """Runs `fn(ctx)` on a pool thread; results come back as signals on the GUI thread."""

    def __init__(self, fn: Callable[[JobContext], Any], name: str = "job") -> None:
        super().__init__()
        self.setAutoDelete(False)  # the Python side keeps it alive until `finished`
        self.fn = fn
        self.name = name
        self.signals = JobSignals()
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:  # pool thread
        ctx = JobContext(self.signals, self._cancel)
        try:
            result = self.fn(ctx)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI
            if not isinstance(exc, MemexError):
                traceback.print_exc()
            self.signals.failed.emit(user_message(exc))
        else:
            self.signals.done.emit(result)
        finally:
            self.signals.finished.emit()


class JobRunner(QObject):
    """Starts jobs and keeps them referenced until they finish; knows when all are idle."""

    idle_changed = Signal(bool)
    # Emitted on the GUI thread with the new Job before it is queued on the pool, so a
    # listener (a status line, a test) can connect to its signals before anything is emitted.
    started = Signal(object)

    def __init__(self, parent: QObject | None = None, max_threads: int = 4) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._running: set[Job] = set()

    def start(
        self,
        fn: Callable[[JobContext], Any],
        *,
        name: str = "job",
        on_done: Callable[[Any], object] | None = None,  # its return value is ignored
        on_error: Callable[[str], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        on_chunk: Callable[[str], None] | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> Job:
        job = Job(fn, name)
        if on_done:
            job.signals.done.connect(on_done)
        if on_error:
            job.signals.failed.connect(on_error)
        if on_progress:
            job.signals.progress.connect(on_progress)
        if on_chunk:
            job.signals.chunk.connect(on_chunk)
        if on_finished:
            job.signals.finished.connect(on_finished)
        job.signals.finished.connect(lambda j=job: self._forget(j))
        was_idle = not self._running
        self._running.add(job)
        if was_idle:
            self.idle_changed.emit(False)
        self.started.emit(job)
        self.pool.start(job)
        return job

    def _forget(self, job: Job) -> None:
        self._running.discard(job)
        if not self._running:
            self.idle_changed.emit(True)

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def running(self, name: str | None = None) -> list[Job]:
        return [j for j in self._running if name is None or j.name == name]

    def cancel_all(self) -> None:
        for job in list(self._running):
            job.cancel()

    def wait(self, msecs: int = 30000) -> bool:
        """Block until every job has returned (used at shutdown and in screenshot mode)."""
        return bool(self.pool.waitForDone(msecs))
