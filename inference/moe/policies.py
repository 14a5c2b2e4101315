"""Cache policies: which experts stay in the fast tier, and the hook predictors use.

A policy is chosen by name from `POLICIES` (name -> class). Policies only rank and
choose; `ExpertCache` owns slots, loads and pins. The prediction work (issue 5) adds
policies such as `fate` by subclassing `CachePolicy`, overriding `quota` (e.g.
shallow-favoring allocation), `rank` (ARC, ...) and `on_router`, which runs after a
layer's own loads were issued and before its experts compute: prefetches issued there
overlap the layer's compute.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch

    from inference.moe.cache import ExpertCache

Key = tuple[int, int]  # (layer, expert)


@dataclass(frozen=True)
class CacheGeometry:
    """What a policy may know about the model and the budget."""

    moe_layers: tuple[int, ...]
    num_experts: int
    top_k: int
    slots: int  # experts the fast tier holds
    expert_bytes: int
    routers: tuple[Any, ...] = ()  # router weight [E,H] per MoE layer (same order as moe_layers)
    norm_topk_prob: bool = False


class CachePolicy:
    """Base policy: per-layer quotas (an even split of the slots), LRU ranking."""

    name: ClassVar[str] = ""
    keeps: ClassVar[bool] = True  # False: drop an expert as soon as it was used
    resident: ClassVar[bool] = False  # True: load everything up front, never evict

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._tick = 0
        self._last: dict[Key, int] = {}

    def setup(self, geometry: CacheGeometry) -> None:
        self.geometry = geometry
        n = len(geometry.moe_layers)
        base, extra = divmod(geometry.slots, max(n, 1))
        self._quota = {layer: base + (1 if i < extra else 0) for i, layer in enumerate(geometry.moe_layers)}

    def quota(self, layer: int) -> int:
        return self._quota[layer]

    # -- bookkeeping hooks (called by ExpertCache on the compute thread) ----------------
    def touch(self, key: Key) -> None:
        self._tick += 1
        self._last[key] = self._tick

    def inserted(self, key: Key, prefetched: bool) -> None:
        if not prefetched:
            self.touch(key)
        else:
            self._tick += 1
            self._last.setdefault(key, self._tick)

    def evicted(self, key: Key) -> None:
        pass

    def rank(self, key: Key) -> Any:
        """Lower ranks are evicted first."""
        return self._last.get(key, 0)

    def victim(self, candidates: list[Key], incoming: Key, counts: dict[int, int]) -> Key:
        """Evict from the incoming layer when it is at its quota, else from the layer most over it."""
        by_layer: dict[int, list[Key]] = defaultdict(list)
        for key in candidates:
            by_layer[key[0]].append(key)
        layer = incoming[0]
        if layer in by_layer and counts.get(layer, 0) >= self.quota(layer):
            return min(by_layer[layer], key=self.rank)
        worst = max(by_layer, key=lambda lyr: (counts.get(lyr, 0) - self.quota(lyr), lyr == layer))
        return min(by_layer[worst], key=self.rank)

    # -- predictor hook ------------------------------------------------------------------
    def on_router(self, layer: int, gate_input: "torch.Tensor", topk_ids: "torch.Tensor",
                  cache: "ExpertCache") -> None:
        """Seen after layer `layer` routed; may call `cache.prefetch(next_layer, experts)`.

        gate_input: [T, H] normalized FFN input; topk_ids: [T, k] chosen experts.
        """

    def metrics(self) -> dict[str, Any]:
        """Extra per-policy numbers for `memex moe bench` (prediction accuracy, ...)."""
        return {}


class OnDemand(CachePolicy):
    """Load-on-Demand baseline: every use is loaded, nothing is kept."""

    name = "on_demand"
    keeps = False


class LRU(CachePolicy):
    name = "lru"


class LFU(CachePolicy):
    """Least frequently used, ties broken by recency; counts persist across evictions."""

    name = "lfu"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._count: dict[Key, int] = defaultdict(int)

    def touch(self, key: Key) -> None:
        super().touch(key)
        self._count[key] += 1

    def rank(self, key: Key) -> Any:
        return (self._count.get(key, 0), self._last.get(key, 0))


class Resident(CachePolicy):
    """Every expert in the fast tier: the ceiling the other policies are measured against."""

    name = "resident"
    resident = True


POLICIES: dict[str, type[CachePolicy]] = {cls.name: cls for cls in (OnDemand, LRU, LFU, Resident)}
# Policies defined in optional modules (issue 5); imported only when chosen.
LAZY_POLICIES: dict[str, str] = {"fate": "inference.moe.fate:FatePolicy"}


def register_policy(cls: type[CachePolicy]) -> type[CachePolicy]:
    """Class decorator for policies defined elsewhere (e.g. inference/moe/fate.py)."""
    POLICIES[cls.name] = cls
    return cls


def policy_names() -> list[str]:
    names = list(POLICIES)
    for name, target in LAZY_POLICIES.items():
        if name not in names and importlib.util.find_spec(target.split(":")[0]) is not None:
            names.append(name)
    return names


def create_policy(name: str, **options: Any) -> CachePolicy:
    from inference.moe.errors import MoEError

    cls = POLICIES.get(name)
    if cls is None and name in LAZY_POLICIES:
        module_name, attr = LAZY_POLICIES[name].split(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError):
            cls = None
    if cls is None:
        raise MoEError(f"Unknown cache policy {name!r}; choose one of: {', '.join(policy_names())}.")
    return cls(**options)
