"""How wide and how far `fate_plus` prefetches, chosen from what loads cost on this machine.

Measured while decoding, from the cache's own statistics at each layer's router hook:
- `layer_s`: compute time of one layer (wall time between two consecutive layers' hooks,
  minus the time compute stalled on loads in between);
- `miss_s`: seconds compute stalls per expert it had to wait for (a demand miss, or a
  prefetch still in flight);
- `loads`: experts loaded per layer.
Both are exponential moving averages. The mode follows:
- `narrow` when a miss costs under `cheap` (10%) of a layer's compute: load only the top-k
  predictions (the wider predicted set is still protected from eviction, just not loaded).
  Prefetching more costs CPU and reader bandwidth that the few ms of misses do not repay
  (what the 166 KB experts of the MoEfied testbed measured: ~2 ms of stall per token).
- `ahead` when the loads of a layer take longer than a layer computes
  (loads x miss_s > layer_s): one layer of warning is not enough time, so layer i+2's
  likely experts are queued as well (Fate's gate of i+2 on layer i's input), and, the reader
  being the bottleneck, only the top-k predictions are loaded (the OLMoE-sized testbed with
  traced routing: 13 of 16 predicted loaded moved 644 MB/token against lru's 380 MB and
  decoded at 0.74x lru).
- `normal` otherwise (the configured width, one layer ahead).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MODES = ("narrow", "normal", "ahead")


@dataclass
class WidthController:
    cheap: float = 0.1  # miss cost / layer compute below this: narrow
    alpha: float = 0.2  # EMA weight of a new sample
    layer_s: float = 0.0
    miss_s: float = 0.0
    loads: float = 0.0
    mode: str = "normal"
    _last: tuple[int, float, float, int, int] | None = None  # layer, time, stall, waits, loads
    _modes: Counter = field(default_factory=Counter)

    def observe(self, layer_pos: int, stats: Any, decoding: bool) -> str:
        """Update from the cache stats at the hook of the layer at position `layer_pos`
        (its index among MoE layers); returns the mode for this layer's prefetches."""
        now = time.perf_counter()
        waits = stats.misses + stats.late_hits
        last = self._last
        self._last = (layer_pos, now, stats.stall_s, waits, stats.loads)
        if not decoding or last is None or last[0] != layer_pos - 1:
            return self.mode  # prefill, or the first layer of a token: no layer interval
        stall = stats.stall_s - last[2]
        self.layer_s = self._ema(self.layer_s, max(now - last[1] - stall, 0.0))
        self.loads = self._ema(self.loads, float(stats.loads - last[4]))
        if waits > last[3] and stall > 0:
            self.miss_s = self._ema(self.miss_s, stall / (waits - last[3]))
        self.mode = self._decide()
        self._modes[self.mode] += 1
        return self.mode

    def _ema(self, old: float, new: float) -> float:
        return new if old == 0.0 else (1 - self.alpha) * old + self.alpha * new

    def _decide(self) -> str:
        if self.layer_s <= 0.0 or self.miss_s <= 0.0:
            return "normal"
        if self.miss_s < self.cheap * self.layer_s:
            return "narrow"
        if self.loads * self.miss_s > self.layer_s:
            return "ahead"
        return "normal"

    def metrics(self) -> dict[str, Any]:
        total = sum(self._modes.values())
        return {
            "layer_ms": round(1000 * self.layer_s, 3),
            "miss_ms": round(1000 * self.miss_s, 3),
            "loads_per_layer": round(self.loads, 2),
            "modes": {m: round(self._modes[m] / total, 3) for m in MODES if self._modes[m]}
            if total
            else {},
        }
