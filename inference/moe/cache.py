"""The fast-tier expert cache: slots, loads, pins, readiness and statistics.

Per layer the model calls `begin_layer` (hits and misses are counted, resident experts
are pinned, missing ones start loading), then for each expert in the returned order
`acquire` (waits only for that expert) and `release`. Policies (policies.py) choose what
stays; predictors call `prefetch` from `CachePolicy.on_router` to load experts of later
layers ahead of use. All bookkeeping runs on the compute thread; only the copies run on
the reader process / loader thread / CUDA stream.

Quantized experts: `variants` lists how blobs are stored (variant 0: what the cache keeps;
the `int4_int2` scheme adds variant 1, INT2, for loads of experts that are not hot yet). Packed
blobs are dequantized just before the expert's matmul: in `acquire` (loop path) or by the
fused path (fused.py), which takes slots from `acquire_slot` and reads the slab itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from inference.moe.policies import (  # re-exported: the public face of the cache
    POLICIES,
    POLICY_MODULES,
    CacheGeometry,
    CachePolicy,
    Key,
    create_policy,
    policy_names,
    register_policy,
)
from inference.moe.storage.jobs import DEMAND, PREFETCH, Loader, Ticket
from inference.moe.storage.loader import record_use

if TYPE_CHECKING:
    import torch

    from inference.moe.storage.store import ExpertLayout, FastTier

__all__ = [
    "POLICIES",
    "POLICY_MODULES",
    "CacheGeometry",
    "CachePolicy",
    "CacheStats",
    "ExpertCache",
    "Key",
    "create_policy",
    "policy_names",
    "register_policy",
]


@dataclass
class CacheStats:
    hits: int = 0  # resident or already loading (prefetched) when the layer asked
    late_hits: int = 0  # of those, still loading at that moment (compute may stall on them)
    misses: int = 0
    bytes_moved: int = 0
    stall_s: float = 0.0
    loads: int = 0
    prefetch_issued: int = 0
    prefetch_used: int = 0
    prefetch_wasted_bytes: int = 0  # prefetched, then evicted without ever being used
    cold_loads: int = 0  # loads in the cold variant (int4_int2 quant scheme: INT2)
    per_layer: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


_UNSUBMITTED = Ticket()  # placeholder while a prefetch batch is being assembled


@dataclass
class _Entry:
    slot: int
    ticket: Ticket
    pins: int = 0
    prefetched: bool = False
    used: bool = False
    done: bool = False  # sticky readiness, so finished loads are not re-queried
    variant: int = 0  # which stored form is in the slot (ExpertCache.variants)
    expert: int = 0

    def ready(self) -> bool:
        if not self.done:
            self.done = self.ticket.ready()
        return self.done


class ExpertCache:
    def __init__(
        self,
        policy: CachePolicy,
        geometry: CacheGeometry,
        fast: FastTier,
        loader: Loader,
        hidden: int,
        expert_dim: int,
        variants: Sequence[ExpertLayout] = (),
        hot_uses: int = 2,
    ) -> None:
        self.policy = policy
        self.geometry = geometry
        self.fast = fast
        self.loader = loader
        self.hidden = hidden
        self.expert_dim = expert_dim
        self.stats = CacheStats()
        self._entries: dict[Key, _Entry] = {}
        self._free: list[int] = list(range(fast.slots - 1, -1, -1))
        self._count: dict[int, int] = defaultdict(int)  # resident experts per layer
        self._unpinned: dict[int, set[Key]] = defaultdict(set)  # eviction candidates per layer
        self._pending: list[Key] = []  # demanded but no slot yet
        self._last_use: list[Any] = [None] * fast.slots  # GPU: event of the last compute on a slot
        self._layout = fast.layout
        # stored forms of the experts; a slot is sized for the largest (variant 0)
        self.variants: list[ExpertLayout] = list(variants) or [fast.layout]
        self._hot_uses = hot_uses  # uses before an expert counts as hot (loads as variant 0)
        self._uses: dict[Key, int] = defaultdict(int)
        policy.setup(geometry)

    # -- the per-layer protocol ----------------------------------------------------------
    def begin_layer(self, layer: int, experts: list[int]) -> list[int]:
        """Count hits/misses, pin what is there, start loading the rest; returns compute order."""
        ready: list[int] = []
        inflight: list[int] = []
        missing: list[int] = []
        per_layer = self.stats.per_layer[layer]
        for e in experts:
            key = (layer, e)
            entry = self._entries.get(key)
            if entry is None:
                missing.append(e)
                self.stats.misses += 1
                per_layer[1] += 1
                continue
            self.stats.hits += 1
            per_layer[0] += 1
            if entry.pins == 0:
                self._unpinned[layer].discard(key)
            entry.pins += 1
            if entry.ready():
                ready.append(e)
            else:
                inflight.append(e)
                self.stats.late_hits += 1
        batch: list[_Entry] = []
        for e in missing:
            if not self._load((layer, e), DEMAND, pin=True, evict=True, batch=batch):
                self._pending.append((layer, e))
        self._submit(layer, batch, DEMAND)  # one wake-up of the loader for all misses
        # experts already in the fast tier compute first while the misses stream in
        return ready + inflight + missing

    def acquire(self, layer: int, expert: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(gate_up [2I,H], down [H,I]) of a pinned expert, waiting for its load if needed."""
        slot, stored = self.acquire_slot(layer, expert)
        if stored.bits:
            return self.fast.decode(slot, stored)  # dequantized just before the matmul
        return self.fast.weights(slot, self.hidden, self.expert_dim)

    def is_ready(self, layer: int, expert: int) -> bool:
        """Whether the expert's blob is in its slot now (never blocks)."""
        entry = self._entries.get((layer, expert))
        return entry is not None and entry.ready()

    def acquire_slot(self, layer: int, expert: int) -> tuple[int, ExpertLayout]:
        """(slot, stored form) of a pinned expert once its load finished: the fused path
        reads the slab itself (fused.py)."""
        key = (layer, expert)
        entry = self._entries.get(key)
        while entry is None:  # pending: a slot frees up as earlier experts are released
            if self._load(key, DEMAND, pin=True, evict=True):
                self._pending.remove(key)
            else:
                self._wait_any_inflight()
            entry = self._entries.get(key)
        self.stats.stall_s += entry.ticket.wait()
        if entry.prefetched and not entry.used:
            self.stats.prefetch_used += 1
        entry.used = True
        self._uses[key] += 1
        self.policy.touch(key)
        return entry.slot, self.variants[entry.variant]

    def release(self, layer: int, expert: int) -> None:
        key = (layer, expert)
        entry = self._entries[key]
        entry.pins -= 1
        self._last_use[entry.slot] = record_use(self.fast.device)
        if entry.pins == 0:
            if self.policy.keeps:
                self._unpinned[layer].add(key)
            else:
                self._drop(key)
        while self._pending and self._load(self._pending[0], DEMAND, pin=True, evict=True):
            self._pending.pop(0)

    # -- prefetch interface for predictors -------------------------------------------------
    def prefetch(self, layer: int, experts: list[int]) -> int:
        """Start loading experts of `layer` ahead of use; never evicts pinned/in-flight ones.

        Returns how many loads were issued (already-resident experts need none).
        """
        batch: list[_Entry] = []
        for e in experts:
            key = (layer, e)
            if key in self._entries:
                continue
            self._load(key, PREFETCH, pin=False, evict=True, batch=batch)
        self._submit(layer, batch, PREFETCH)
        self.stats.prefetch_issued += len(batch)
        return len(batch)

    def _submit(self, layer: int, batch: list[_Entry], priority: int) -> None:
        if batch:
            jobs = [
                (self._layout.index(layer, b.expert), b.slot, self._last_use[b.slot], b.variant)
                for b in batch
            ]
            for entry, ticket in zip(batch, self.loader.submit_many(jobs, priority)):
                entry.ticket = ticket

    def contains(self, layer: int, expert: int) -> bool:
        return (layer, expert) in self._entries

    def resident_experts(self, layer: int) -> list[int]:
        return sorted(e for (lyr, e) in self._entries if lyr == layer)

    def preload_all(self) -> None:
        """Fill the fast tier with every expert (the `resident` policy)."""
        for layer in self.geometry.moe_layers:
            for e in range(self.geometry.num_experts):
                self._load((layer, e), PREFETCH, pin=False, evict=False, hot=True)
        for entry in self._entries.values():
            entry.ticket.wait()

    # -- internals ---------------------------------------------------------------------------
    def _variant(self, key: Key, hot: bool | None) -> int:
        """Stored form to load: the cold one (int4_int2 scheme: INT2) unless the expert is hot."""
        if len(self.variants) < 2:
            return 0
        if hot is None:
            hot = self._uses.get(key, 0) >= self._hot_uses
        return 0 if hot else 1

    def _load(
        self,
        key: Key,
        priority: int,
        pin: bool,
        evict: bool,
        hot: bool | None = None,
        batch: list[_Entry] | None = None,
    ) -> bool:
        """Give `key` a slot and start its read; with `batch`, the caller submits the read."""
        slot = self._take_slot(key, evict)
        if slot is None:
            return False
        variant = self._variant(key, hot)
        entry = _Entry(
            slot,
            _UNSUBMITTED,
            pins=1 if pin else 0,
            prefetched=priority == PREFETCH,
            variant=variant,
            expert=key[1],
        )
        if batch is None:
            entry.ticket = self.loader.submit(
                self._layout.index(*key),
                slot,
                priority,
                after=self._last_use[slot],
                variant=variant,
            )
        else:
            batch.append(entry)
        self._entries[key] = entry
        self._count[key[0]] += 1
        if not pin:
            self._unpinned[key[0]].add(key)
        self.stats.loads += 1
        self.stats.cold_loads += variant
        self.stats.bytes_moved += self.variants[variant].nbytes
        self.policy.inserted(key, prefetched=priority == PREFETCH)
        return True

    def _take_slot(self, incoming: Key, evict: bool) -> int | None:
        if self._free:
            return self._free.pop()
        if not evict or self.policy.resident:
            return None
        victim = self.policy.victim(incoming, self._evictable, self._count)
        if victim is None:
            return None
        self._drop(victim)
        return self._free.pop()

    def _evictable(self, layer: int) -> list[Key]:
        entries = self._entries
        # `done` first: runs for every eviction over the layer's whole share
        return [k for k in self._unpinned.get(layer, ()) if (e := entries[k]).done or e.ready()]

    def resident_among(self, layer: int, experts: list[int]) -> set[int]:
        """The experts of `layer` among `experts` that are resident or loading."""
        entries = self._entries
        return {e for e in experts if (layer, e) in entries}

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key)
        self._count[key[0]] -= 1
        self._unpinned[key[0]].discard(key)
        if entry.prefetched and not entry.used:
            self.stats.prefetch_wasted_bytes += self.variants[entry.variant].nbytes
        self.policy.evicted(key)
        self._free.append(entry.slot)

    def _wait_any_inflight(self) -> None:
        waiting = [v for v in self._entries.values() if not v.ready()]
        if not waiting:
            raise RuntimeError(
                "expert cache: no slot can be freed (all pinned)"
            )  # pragma: no cover
        self.stats.stall_s += waiting[0].ticket.wait()

    @property
    def fast_tier_bytes(self) -> int:
        return self.fast.nbytes

    def close(self) -> None:
        self.loader.close()
