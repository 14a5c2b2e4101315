"""Cycles are collected on the GUI thread, never in a worker (Qt objects must die there)."""

from __future__ import annotations

import gc
import threading

from app.gui import gcguard


class _Cycle:
    freed_on: list[str] = []

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        _Cycle.freed_on.append(threading.current_thread().name)


def test_cycles_made_in_a_worker_are_freed_on_the_gui_thread(qtbot, window) -> None:
    assert gcguard.install() is gcguard.install()  # one collector per application
    assert not gc.isenabled()
    gc.collect()  # start from empty generations
    _Cycle.freed_on.clear()

    kept: list[object] = []

    def worker() -> None:
        for _ in range(50):
            _Cycle()  # garbage cycles only the collector can free
        # live allocations push the young generation over its threshold (freed ones would not)
        kept.append([[i] for i in range(5000)])

    t = threading.Thread(target=worker, name="memex-worker")
    t.start()
    t.join()
    assert _Cycle.freed_on == []  # nothing collected in the worker
    qtbot.waitUntil(lambda: len(_Cycle.freed_on) == 50, timeout=5000)
    assert set(_Cycle.freed_on) == {threading.main_thread().name}
    kept.clear()


def test_warm_up_freezes_what_is_loaded(qtbot, window) -> None:
    gc.unfreeze()
    window.services.warm_up(heavy=False)
    qtbot.waitUntil(lambda: gc.get_freeze_count() > 0, timeout=30000)
    gc.unfreeze()  # the tests that follow collect normally
