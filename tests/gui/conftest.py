"""GUI tests: real Qt (offscreen), real memory store in a temp MEMEX_HOME, pytest-qt."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QObject, Signal  # noqa: E402


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("MEMEX_HOME", str(h))
    return h


@pytest.fixture
def runtime(home: Path) -> Iterator[object]:
    from app.runtime import Runtime
    from app.settings import load_settings

    rt = Runtime(load_settings(home=home))
    yield rt
    rt.close()


@pytest.fixture
def window(qtbot: object, runtime: object) -> Iterator[object]:
    from app.gui.app import build_window, ensure_app

    ensure_app()
    win = build_window(runtime)
    qtbot.addWidget(win)  # type: ignore[attr-defined]
    win.show()
    yield win
    win.services.jobs.cancel_all()
    win.services.jobs.wait(60000)
    win.close()
    # the app collects cycles on its GUI thread only (app/gui/gcguard.py); the tests that
    # follow run no event loop, so hand collection back to the interpreter
    gc.unfreeze()  # the warm-up froze what was loaded (gcguard.settle)
    gc.collect()
    gc.enable()


# How long a wait for a job may take before the test fails. Generous on purpose: a cold start
# loads torch and the embedding model in the first job, which takes minutes on a loaded
# machine; the tests assert what happens, never how fast.
JOB_TIMEOUT_MS = 300_000


def wait_idle(qtbot: object, win: object, timeout: int = JOB_TIMEOUT_MS) -> None:
    """Wait until no worker job is running (the runner says so with `idle_changed`)."""
    jobs = win.services.jobs  # type: ignore[attr-defined]
    if jobs.busy:
        with qtbot.waitSignal(
            jobs.idle_changed,
            timeout=timeout,  # type: ignore[attr-defined]
            check_params_cb=lambda idle: bool(idle),
        ):
            pass


class JobWatch(QObject):
    """The next job named `name` the window starts, watched from before it runs.

    Create it before the action that starts the job: the runner's `started` signal hands the
    job over on the GUI thread before it is queued, so no progress, result or end is missed
    (connecting after `start` loses whatever the worker emitted first). The page's own slots
    were connected first, so when `finished` fires here the page has already handled the end.
    """

    progressed = Signal(object)
    finished = Signal()

    def __init__(self, win: object, name: str) -> None:
        super().__init__()
        self.name = name
        self.job: object | None = None
        self.progress: list[object] = []
        self.done: list[object] = []
        self.failed: list[str] = []
        self.chunks: list[str] = []
        self.ended = False
        self._jobs = win.services.jobs  # type: ignore[attr-defined]
        self._jobs.started.connect(self._attach)

    def _attach(self, job: object) -> None:
        if self.job is not None or job.name != self.name:  # type: ignore[attr-defined]
            return
        self.job = job
        self._jobs.started.disconnect(self._attach)
        sig = job.signals  # type: ignore[attr-defined]
        sig.progress.connect(self._on_progress)
        sig.chunk.connect(self.chunks.append)
        sig.done.connect(self.done.append)
        sig.failed.connect(self.failed.append)
        sig.finished.connect(self._on_finished)

    def _on_progress(self, value: object) -> None:
        self.progress.append(value)
        self.progressed.emit(value)

    def _on_finished(self) -> None:
        self.ended = True
        self.finished.emit()

    def wait_progress(
        self,
        qtbot: object,
        until: Callable[[Any], bool] | None = None,
        timeout: int = JOB_TIMEOUT_MS,
    ) -> None:
        """Wait until the job has reported a progress value `until` accepts (default: any)."""
        accept = until or (lambda _value: True)
        while not any(accept(v) for v in self.progress) and not self.ended:
            with qtbot.waitSignal(self.progressed, timeout=timeout):  # type: ignore[attr-defined]
                pass

    def wait(self, qtbot: object, timeout: int = JOB_TIMEOUT_MS) -> JobWatch:
        """Wait until the job has finished (done or failed, then finished)."""
        if not self.ended:
            with qtbot.waitSignal(self.finished, timeout=timeout):  # type: ignore[attr-defined]
                pass
        return self


def tree_texts(tree: object, column: int = 1) -> list[str]:
    return [tree.topLevelItem(i).text(column) for i in range(tree.topLevelItemCount())]  # type: ignore[attr-defined]
