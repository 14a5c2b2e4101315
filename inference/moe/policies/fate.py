"""The `fate` cache policy (Fate, arXiv 2502.12224) and our `fate_linear` variant.

- Shallow-favoring allocation: the first layers, where cross-layer prediction is weakest
  (layer 0 has no previous layer at all), stay fully resident while they take at most
  `shallow_share` of the budget (at most `shallow_layers` layers); the remaining slots are
  split evenly over the deeper layers.
- One ARC cache per layer (recency list T1, frequency list T2, ghost lists B1/B2 that adapt
  the target size p of T1), so one-off prefetches do not flush experts that keep coming back.
- Prefetch: after layer i routed (`on_router`, before its experts compute) the predictor names
  layer i+1's experts and `ExpertCache.prefetch` loads them on the loader thread; compute waits
  only for the experts it needs (per-expert readiness lives in the cache).
- `fate` predicts with Fate's cross-layer gate (predictor `cross_layer`); `fate_linear` with
  `predict.LinearMapPredictor` (predictor `linear_map`: fitted maps loaded from the checkpoint
  folder, else the cross-layer gate alone until fitted).

Prediction accuracy (share of used experts that were predicted, per layer) is reported through
`metrics()`; the cache's own stats hold hit rate, stalls and wasted prefetch bytes.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.moe.policies import CacheGeometry, CachePolicy, Key, register_policy

if TYPE_CHECKING:
    import torch

    from inference.moe.cache import ExpertCache
    from inference.moe.predictors.predict import Predictor


class _Arc:
    """ARC bookkeeping of one layer (Megiddo & Modha): which resident expert to evict."""

    def __init__(self, capacity: int) -> None:
        self.c = max(capacity, 1)
        self.p = 0.0  # target size of T1
        self.t1: OrderedDict[int, None] = OrderedDict()  # resident, used once recently
        self.t2: OrderedDict[int, None] = OrderedDict()  # resident, used at least twice
        self.b1: OrderedDict[int, None] = OrderedDict()  # ghosts evicted from T1
        self.b2: OrderedDict[int, None] = OrderedDict()  # ghosts evicted from T2

    def inserted(self, e: int) -> None:
        if e in self.b1:  # recency was undervalued: grow T1's target
            self.p = min(float(self.c), self.p + max(1.0, len(self.b2) / max(len(self.b1), 1)))
            del self.b1[e]
            self.t2[e] = None
        elif e in self.b2:  # frequency was undervalued: shrink T1's target
            self.p = max(0.0, self.p - max(1.0, len(self.b1) / max(len(self.b2), 1)))
            del self.b2[e]
            self.t2[e] = None
        else:
            self.t1[e] = None

    def touched(self, e: int) -> None:
        if e in self.t1:
            del self.t1[e]
            self.t2[e] = None
        elif e in self.t2:
            self.t2.move_to_end(e)
        else:
            self.t1[e] = None

    def evicted(self, e: int) -> None:
        for src, ghost in ((self.t1, self.b1), (self.t2, self.b2)):
            if e in src:
                del src[e]
                ghost[e] = None
                while len(ghost) > self.c:
                    ghost.popitem(last=False)

    def order(self, candidates: list[int]) -> list[int]:
        """All `candidates`, first to evict first (what `victim` would pick, repeatedly)."""
        allowed = set(candidates)
        first, second = (self.t1, self.t2) if len(self.t1) > self.p else (self.t2, self.t1)
        out = [e for e in first if e in allowed] + [e for e in second if e in allowed]
        if len(out) < len(allowed):  # not in T1/T2 (never happens in the cache's use)
            seen = set(out)
            out += [e for e in candidates if e not in seen]
        return out

    def victim(self, candidates: list[int]) -> int:
        """LRU end of T1 when T1 is over its target p, else LRU end of T2 (falling back)."""
        allowed = set(candidates)
        first, second = (self.t1, self.t2) if len(self.t1) > self.p else (self.t2, self.t1)
        for lst in (first, second):
            for e in lst:  # oldest first
                if e in allowed:
                    return e
        return candidates[0]


class FatePolicy(CachePolicy):
    """Shallow-favoring ARC caches + cross-layer prefetch (see module doc)."""

    name = "fate"
    predictor_name = "cross_layer"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.extra = int(options.get("extra", 1))  # prefetch top-(k + extra)
        self.shallow_layers = int(options.get("shallow_layers", 4))
        self.shallow_share = float(options.get("shallow_share", 1 / 3))
        self.folder: Path | None = Path(options["folder"]) if options.get("folder") else None
        self.cache_dir: Path | None = (
            Path(options["cache_dir"]) if options.get("cache_dir") else None
        )
        self._arc: dict[int, _Arc] = {}
        self._fresh: set[Key] = set()  # inserted, first use not seen yet
        self._pending: dict[int, Any] = {}  # layer -> predicted [T, w] for its coming tokens
        self._hits: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # layer -> [predicted, used]
        self.predictor: Predictor | None = None

    # -- allocation ------------------------------------------------------------------------
    def setup(self, geometry: CacheGeometry) -> None:
        super().setup(geometry)
        layers, e = list(geometry.moe_layers), geometry.num_experts
        full = 0
        while (
            full < min(self.shallow_layers, len(layers) - 1)
            and (full + 1) * e <= self.shallow_share * geometry.slots
        ):
            full += 1
        rest = geometry.slots - full * e
        deep = layers[full:]
        base, extra = divmod(rest, max(len(deep), 1))
        self._quota = {layer: e for layer in layers[:full]}
        self._quota.update({layer: base + (1 if i < extra else 0) for i, layer in enumerate(deep)})
        self.resident_layers = full
        self._arc = {layer: _Arc(self._quota[layer]) for layer in layers}
        self._next = dict(pairwise(layers))
        if geometry.routers:
            self.predictor = self._make_predictor(geometry)

    def _make_predictor(self, geometry: CacheGeometry) -> Predictor:
        from inference.moe.predictors.predict import create_predictor

        # Fate's cross-layer gate is one small matmul: it runs where the routers are (on a GPU,
        # only the [T, w] expert ids come back); the other predictors compute on the CPU
        keep = self.predictor_name == "cross_layer"
        routers = [r.float() if keep else r.float().cpu() for r in geometry.routers]
        return create_predictor(self.predictor_name, routers, geometry.top_k, self.extra)

    # -- ARC hooks -------------------------------------------------------------------------
    def touch(self, key: Key) -> None:
        super().touch(key)
        if key in self._fresh:  # the use that brought it in: its first reference, no promotion
            self._fresh.discard(key)
        else:
            self._arc[key[0]].touched(key[1])

    def inserted(self, key: Key, prefetched: bool) -> None:
        self._tick += 1
        self._last[key] = self._tick
        self._fresh.add(key)
        self._arc[key[0]].inserted(key[1])

    def evicted(self, key: Key) -> None:
        self._fresh.discard(key)
        self._arc[key[0]].evicted(key[1])

    def victim(
        self, incoming: Key, candidates: Callable[[int], list[Key]], counts: dict[int, int]
    ) -> Key | None:
        layer = incoming[0]
        order = [layer] if counts.get(layer, 0) >= self.quota(layer) else []
        order += sorted(counts, key=lambda x: counts[x] - self.quota(x), reverse=True)
        for lyr in order:
            keys = candidates(lyr)
            if keys:
                return (lyr, self._arc[lyr].victim([k[1] for k in keys]))
        return None

    # -- prediction and prefetch -----------------------------------------------------------
    def on_router(
        self, layer: int, gate_input: torch.Tensor, topk_ids: torch.Tensor, cache: ExpertCache
    ) -> None:
        import torch

        predicted = self._pending.pop(layer, None)
        if predicted is not None and predicted.shape[0] == topk_ids.shape[0]:
            used = topk_ids.cpu()  # [T, k]
            hit = (predicted.unsqueeze(2) == used.unsqueeze(1)).any(dim=1).sum()  # [T, w] vs [T, k]
            self._hits[layer][0] += int(hit)
            self._hits[layer][1] += used.numel()
        nxt = self._next.get(layer)
        if nxt is None or self.predictor is None:
            return
        idx = self.geometry.moe_layers.index(layer)
        with torch.no_grad():
            where = self.predictor.routers[0].device
            pred = self.predictor.predict(idx, gate_input.float().to(where), None).cpu()  # [T, w]
        self._pending[nxt] = pred
        if self.quota(nxt) >= self.geometry.num_experts:
            return  # fully resident layer: nothing to fetch
        # prefill: many tokens; prefetch the most demanded predictions, at most the layer's quota
        counts = torch.bincount(pred.reshape(-1), minlength=self.geometry.num_experts)
        order = torch.argsort(counts, descending=True, stable=True)
        want = [int(e) for e in order[: min(self.quota(nxt), int((counts > 0).sum()))]]
        cache.prefetch(nxt, want)

    def reset_metrics(self) -> None:
        predicted = sum(v[0] for v in self._hits.values())
        used = sum(v[1] for v in self._hits.values())
        self._prefill_accuracy = round(predicted / used, 4) if used else None
        self._hits.clear()

    def metrics(self) -> dict[str, Any]:
        predicted = sum(v[0] for v in self._hits.values())
        used = sum(v[1] for v in self._hits.values())
        out = {
            "predictor": self.predictor_name,
            "prediction_accuracy": round(predicted / used, 4) if used else None,
            "per_layer_prediction_accuracy": {
                str(k): round(v[0] / v[1], 4) for k, v in sorted(self._hits.items()) if v[1]
            },
            "resident_layers": self.resident_layers,
        }
        if getattr(self, "_prefill_accuracy", None) is not None:
            out["prefill_prediction_accuracy"] = self._prefill_accuracy
        return out


class FateLinearPolicy(FatePolicy):
    """`fate` with our fitted cross-layer maps (predict.LinearMapPredictor)."""

    name = "fate_linear"
    predictor_name = "linear_map"

    def _make_predictor(self, geometry: CacheGeometry) -> Predictor:
        from inference.moe.predictors.predict import CrossLayerGatePredictor, fitted_predictor

        routers = [r.float().cpu() for r in geometry.routers]
        if self.folder is None:  # nothing to fit on: plain Fate prediction
            self.predictor_name = "cross_layer"
            return CrossLayerGatePredictor(routers, geometry.top_k, self.extra)
        cache_dir = self.cache_dir
        if cache_dir is None and not (self.folder / "moefy.json").is_file():
            # never write into a user's own checkpoint folder
            import tempfile

            cache_dir = Path(tempfile.gettempdir()) / "memex-moe-predictors"
        return fitted_predictor(
            "linear_map", self.folder, routers, geometry.top_k, self.extra, cache_dir=cache_dir
        )


register_policy(FatePolicy)
register_policy(FateLinearPolicy)
