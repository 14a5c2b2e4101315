"""Cache mechanics on a scripted workload: policies, budgets, pins, prefetch, readiness."""

from __future__ import annotations

import pytest
import torch

from inference.moe.cache import POLICIES, CacheGeometry, CachePolicy, ExpertCache, create_policy
from inference.moe.errors import CorruptExpertFile, MoEError
from inference.moe.storage.loader import ThreadLoader
from inference.moe.storage.store import (
    DiskSlowTier,
    ExpertLayout,
    FastTier,
    MemorySlowTier,
    write_expert_file,
)

H, I = 8, 4  # noqa: E741 - hidden and expert dims, as in the papers
LAYOUT = ExpertLayout(
    moe_layers=(0, 1), num_experts=6, numel=3 * H * I, dtype="float32", itemsize=4
)


def blob(i: int) -> torch.Tensor:
    return torch.full((LAYOUT.numel,), float(i))


def make_cache(policy: str | CachePolicy, slots: int, slow=None) -> ExpertCache:
    if slow is None:
        data = torch.zeros((LAYOUT.count, LAYOUT.blob_bytes), dtype=torch.uint8)
        for i in range(LAYOUT.count):
            data[i, : LAYOUT.nbytes] = blob(i).view(torch.uint8)
        slow = MemorySlowTier(LAYOUT, data)
    fast = FastTier(LAYOUT, slots, "cpu")
    pol = create_policy(policy) if isinstance(policy, str) else policy
    geo = CacheGeometry(
        LAYOUT.moe_layers, LAYOUT.num_experts, top_k=2, slots=slots, expert_bytes=LAYOUT.nbytes
    )
    return ExpertCache(pol, geo, fast, ThreadLoader(slow, fast), H, I)


def use(cache: ExpertCache, layer: int, experts: list[int]) -> list[float]:
    seen = []
    for e in cache.begin_layer(layer, experts):
        gate_up, down = cache.acquire(layer, e)
        assert gate_up.shape == (2 * I, H) and down.shape == (H, I)
        seen.append(float(gate_up[0, 0]))
        assert seen[-1] == float(LAYOUT.index(layer, e))  # the right blob landed in the slot
        cache.release(layer, e)
    return seen


def test_registry_has_the_baselines():
    assert {"on_demand", "lru", "lfu", "resident"} <= set(POLICIES)
    with pytest.raises(MoEError, match="Unknown cache policy"):
        create_policy("nope")


def test_on_demand_never_hits():
    cache = make_cache("on_demand", slots=4)
    for _ in range(3):
        use(cache, 0, [1, 2])
        use(cache, 1, [1, 2])
    assert cache.stats.hits == 0 and cache.stats.misses == 12
    assert cache.stats.bytes_moved == 12 * LAYOUT.nbytes
    cache.close()


def test_lru_evicts_least_recently_used_within_the_layer():
    cache = make_cache("lru", slots=4)  # quota: 2 experts per layer
    use(cache, 0, [0, 1])
    use(cache, 1, [0, 1])
    use(cache, 0, [0])  # 0 is now more recent than 1
    use(cache, 0, [2])  # evicts layer 0's expert 1
    assert cache.resident_experts(0) == [0, 2]
    assert cache.resident_experts(1) == [0, 1]
    before = cache.stats.hits
    use(cache, 0, [0, 2])
    assert cache.stats.hits == before + 2
    cache.close()


def test_lfu_keeps_the_frequent_expert():
    cache = make_cache("lfu", slots=4)
    use(cache, 1, [4, 5])  # layer 1 takes its quota: no free slots left
    for _ in range(3):
        use(cache, 0, [0])
    use(cache, 0, [1])
    use(cache, 0, [2])  # evicts 1 (used once), keeps 0 (used three times)
    assert cache.resident_experts(0) == [0, 2]
    cache.close()


def test_resident_preloads_everything():
    cache = make_cache("resident", slots=LAYOUT.count)
    cache.preload_all()
    use(cache, 0, [0, 5])
    use(cache, 1, [3])
    assert cache.stats.misses == 0 and cache.stats.hit_rate == 1.0
    cache.close()


def test_a_layer_needing_more_experts_than_slots_still_runs():
    cache = make_cache("lru", slots=2)  # prefill: all six experts, two slots
    assert sorted(use(cache, 0, list(range(6)))) == [float(LAYOUT.index(0, e)) for e in range(6)]
    assert len(cache.resident_experts(0)) + len(cache.resident_experts(1)) <= 2
    cache.close()


def test_hits_compute_first_while_misses_load():
    cache = make_cache("lru", slots=4)
    use(cache, 0, [3])
    order = cache.begin_layer(0, [1, 3])
    assert order == [3, 1]
    for e in order:
        cache.acquire(0, e)
        cache.release(0, e)
    cache.close()


class PrefetchNext(CachePolicy):
    """A test predictor: after layer 0 routes, prefetch the same experts in layer 1."""

    name = "test_prefetch"

    def on_router(self, layer, gate_input, topk_ids, cache):
        if layer == 0:
            cache.prefetch(1, sorted(set(topk_ids.flatten().tolist())))


def test_prefetch_interface_turns_misses_into_hits():
    cache = make_cache(PrefetchNext(), slots=4)
    for e in ([0, 1], [2, 3]):
        order = cache.begin_layer(0, e)
        cache.policy.on_router(0, torch.zeros(1, H), torch.tensor([e]), cache)
        for x in order:
            cache.acquire(0, x)
            cache.release(0, x)
        use(cache, 1, e)
    s = cache.stats
    assert s.prefetch_issued == 4 and s.prefetch_used == 4
    assert s.per_layer[1] == [4, 0]  # every layer-1 use was a prefetched hit
    assert s.prefetch_wasted_bytes == 0
    cache.close()


def test_prefetch_never_evicts_pinned_experts():
    cache = make_cache("lru", slots=2)
    order = cache.begin_layer(0, [0, 1])  # both slots pinned by the layer in flight
    assert cache.prefetch(1, [4, 5]) == 0
    for e in order:
        cache.acquire(0, e)
        cache.release(0, e)
    assert cache.prefetch(1, [4]) == 1
    cache.close()


def test_loader_errors_reach_the_compute_thread(tmp_path):
    path = tmp_path / "experts.bin"
    write_expert_file(path, LAYOUT, blob)
    disk = DiskSlowTier(path)
    offset = disk._offset + LAYOUT.index(1, 2) * LAYOUT.blob_bytes
    disk.close()
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * 16)
    cache = make_cache("lru", slots=4, slow=DiskSlowTier(path))
    use(cache, 0, [0, 1])
    with pytest.raises(CorruptExpertFile, match="checksum"):
        use(cache, 1, [2])
    cache.close()
