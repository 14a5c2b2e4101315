"""Python's cyclic garbage collector runs on the GUI thread only.

A reference cycle that holds a Qt wrapper (a closed dialog, a timer, a lambda connected to a
signal) is freed by whichever thread happens to allocate when the collector triggers. When
that is a worker, the C++ destructor runs off the GUI thread and Qt can crash: we saw a
segfault in a worker opening the memory store while the collector freed objects of an
earlier window. So automatic collection is switched off while the app runs, and a timer on
the GUI thread collects by the interpreter's own generation thresholds. Full (gen 2)
collections are spaced out, as the interpreter's own heuristic does, so they do not stall
frames while answers stream.
"""

from __future__ import annotations

import gc
import time

from PySide6.QtCore import QCoreApplication, QObject, QTimer

CHECK_MS = 250
FULL_EVERY_S = 30.0

_collector: MainThreadCollector | None = None


class MainThreadCollector(QObject):
    def __init__(self, parent: QObject | None = None, interval_ms: int = CHECK_MS) -> None:
        super().__init__(parent)
        self._last_full = time.monotonic()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)
        self._timer.start(interval_ms)
        self.destroyed.connect(lambda *_: gc.enable())  # app gone: the interpreter collects again

    def check(self) -> int:
        """Collect the generations whose thresholds are crossed; returns objects freed."""
        t0, t1, t2 = gc.get_threshold()
        c0, c1, c2 = gc.get_count()
        now = time.monotonic()
        if c2 > t2 and now - self._last_full >= FULL_EVERY_S:
            self._last_full = now
            return gc.collect(2)
        if c1 > t1:
            return gc.collect(1)
        if c0 > t0:
            return gc.collect(0)
        return 0


def settle() -> int:
    """After the warm-up loaded the heavy libraries: move every object alive now (modules,
    torch, chromadb, the embedding model) out of the collector's sight, so later collections
    on the GUI thread only walk what the session creates. Returns how many were frozen."""
    gc.freeze()
    return gc.get_freeze_count()


def install() -> MainThreadCollector | None:
    """Once per QApplication (idempotent); None when there is no application yet."""
    global _collector
    app = QCoreApplication.instance()
    if app is None:
        return None
    try:
        current = _collector is not None and _collector.parent() is app
    except RuntimeError:  # the previous application (and its collector) was deleted
        current = False
    if not current:
        _collector = MainThreadCollector(parent=app)
    gc.disable()
    return _collector
