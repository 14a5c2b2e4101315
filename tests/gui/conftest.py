"""GUI tests: real Qt (offscreen), real memory store in a temp MEMEX_HOME, pytest-qt."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


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


def wait_idle(qtbot: object, win: object, timeout: int = 60000) -> None:
    """Wait until no worker job is running."""
    qtbot.waitUntil(lambda: not win.services.jobs.busy, timeout=timeout)  # type: ignore[attr-defined]


def tree_texts(tree: object, column: int = 1) -> list[str]:
    return [tree.topLevelItem(i).text(column) for i in range(tree.topLevelItemCount())]  # type: ignore[attr-defined]
