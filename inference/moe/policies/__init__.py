"""Cache policies: which experts stay in the fast tier, and the hook predictors use.

A policy is chosen by name from `POLICIES` (name -> class). Policies only rank and
choose; `ExpertCache` owns slots, loads and pins. The prediction work (issue 5) adds
policies such as `fate` in policies/fate.py and our `fate_plus` in
policies/fate_plus.py (listed in POLICY_MODULES) with
`@register_policy` on a `CachePolicy` subclass, overriding `quota` (e.g.
shallow-favoring allocation), `rank` (ARC, ...) and `on_router`, which runs after a
layer's own loads were issued and before its experts compute: prefetches issued there
overlap the layer's compute.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections import defaultdict
from collections.abc import Callable
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
        self._quota = {
            layer: base + (1 if i < extra else 0) for i, layer in enumerate(geometry.moe_layers)
        }

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

    def victim(
        self, incoming: Key, candidates: Callable[[int], list[Key]], counts: dict[int, int]
    ) -> Key | None:
        """Evict in the incoming layer when it is at its quota, else in the layer most over it.

        `candidates(layer)` lists that layer's evictable experts (resident, loaded, unpinned);
        `counts` is the number of resident experts per layer. None: nothing can be evicted.
        """
        layer = incoming[0]
        if counts.get(layer, 0) >= self.quota(layer):
            own = candidates(layer)
            if own:
                return min(own, key=self.rank)
        for lyr in sorted(counts, key=lambda x: counts[x] - self.quota(x), reverse=True):
            keys = candidates(lyr)
            if keys:
                return min(keys, key=self.rank)
        return None

    # -- predictor hooks -----------------------------------------------------------------
    def on_tokens(self, ids: list[int]) -> None:
        """The token ids of the coming forward pass (before any layer runs)."""

    def on_router(
        self, layer: int, gate_input: torch.Tensor, topk_ids: torch.Tensor, cache: ExpertCache
    ) -> None:
        """Seen after layer `layer` routed; may call `cache.prefetch(next_layer, experts)`.

        gate_input: [T, H] normalized FFN input; topk_ids: [T, k] chosen experts.
        """

    def metrics(self) -> dict[str, Any]:
        """Extra per-policy numbers for `memex moe bench` (prediction accuracy, ...)."""
        return {}

    def reset_metrics(self) -> None:
        """Start counting afresh (the bench calls it between prefill and decode)."""


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
# Modules that define more policies with @register_policy; imported only when a
# name is not found among the built-ins, so choosing `lru` never loads them.
POLICY_MODULES: tuple[str, ...] = (
    "inference.moe.policies.fate",
    "inference.moe.policies.fate_plus",
)


def register_policy(cls: type[CachePolicy]) -> type[CachePolicy]:
    """Class decorator for policies defined elsewhere (e.g. policies/fate.py)."""
    POLICIES[cls.name] = cls
    return cls


def _import_policy_modules() -> None:
    for module_name in POLICY_MODULES:
        if importlib.util.find_spec(module_name) is not None:
            importlib.import_module(module_name)


def policy_names() -> list[str]:
    _import_policy_modules()
    return list(POLICIES)


def create_policy(name: str, **options: Any) -> CachePolicy:
    from inference.moe.errors import unknown

    if name not in POLICIES:
        _import_policy_modules()
    cls = POLICIES.get(name)
    if cls is None:
        raise unknown("cache policy", name, policy_names())
    return cls(**options)
