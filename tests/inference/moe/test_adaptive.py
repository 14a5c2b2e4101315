"""The prefetch-width controller: narrow when misses are cheap, two layers ahead when loads
dominate."""

from __future__ import annotations

from types import SimpleNamespace

from inference.moe.policies import adaptive
from inference.moe.policies.adaptive import WidthController


def _drive(monkeypatch, layer_s: float, miss_s: float, misses_per_layer: int) -> WidthController:
    clock = {"t": 0.0}
    monkeypatch.setattr(adaptive.time, "perf_counter", lambda: clock["t"])
    ctl = WidthController()
    stats = SimpleNamespace(misses=0, late_hits=0, stall_s=0.0, loads=0)
    for _token in range(6):
        for layer in range(4):
            ctl.observe(layer, stats, decoding=True)
            stall = misses_per_layer * miss_s
            clock["t"] += layer_s + stall
            stats.misses += misses_per_layer
            stats.loads += misses_per_layer
            stats.stall_s += stall
    return ctl


def test_cheap_misses_narrow_the_width(monkeypatch):
    ctl = _drive(monkeypatch, layer_s=0.010, miss_s=0.0001, misses_per_layer=2)
    assert ctl.mode == "narrow"
    assert abs(ctl.layer_s - 0.010) < 1e-9 and abs(ctl.miss_s - 0.0001) < 1e-9


def test_dominant_loads_look_two_layers_ahead(monkeypatch):
    ctl = _drive(monkeypatch, layer_s=0.010, miss_s=0.006, misses_per_layer=4)
    assert ctl.mode == "ahead"
    assert ctl.metrics()["modes"]["ahead"] > 0.5


def test_in_between_stays_normal(monkeypatch):
    ctl = _drive(monkeypatch, layer_s=0.010, miss_s=0.002, misses_per_layer=2)
    assert ctl.mode == "normal"


def test_prefill_is_not_measured(monkeypatch):
    ctl = WidthController()
    stats = SimpleNamespace(misses=5, late_hits=0, stall_s=1.0, loads=5)
    ctl.observe(0, stats, decoding=False)
    ctl.observe(1, stats, decoding=False)
    assert ctl.layer_s == 0.0 and ctl.mode == "normal"
