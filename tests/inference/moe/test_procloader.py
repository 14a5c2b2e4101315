"""The reader-process loader: same bytes, same errors as the thread loader, clean exit."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from inference.moe.cache import CacheGeometry, ExpertCache, create_policy
from inference.moe.engine import load_model
from inference.moe.errors import CorruptExpertFile
from inference.moe.storage.jobs import DEMAND, PREFETCH
from inference.moe.storage.loader import ThreadLoader, make_loader
from inference.moe.storage.procloader import ProcessLoader
from inference.moe.storage.store import DiskSlowTier, ExpertLayout, FastTier, write_expert_file

H, FF = 8, 4  # hidden and expert (feed-forward) dims
LAYOUT = ExpertLayout(
    moe_layers=(0, 1), num_experts=6, numel=3 * H * FF, dtype="float32", itemsize=4
)
PROMPT = [5, 40, 77, 123, 9, 250, 31, 64, 200, 3, 17, 88]


def blob(i: int) -> torch.Tensor:
    return torch.full((LAYOUT.numel,), float(i))


def test_disk_tier_on_cpu_uses_the_reader_process(tmp_path):
    path = tmp_path / "experts.bin"
    write_expert_file(path, LAYOUT, blob)
    disk = DiskSlowTier(path)
    fast = FastTier(LAYOUT, 4, "cpu", shared=True)
    loader = make_loader(disk, fast)
    try:
        assert isinstance(loader, ProcessLoader)
        tickets = loader.submit_many([(i, i, None, 0) for i in range(4)], PREFETCH)
        for t in tickets:
            t.wait()
        assert all(t.ready() for t in tickets)
        first = [float(fast.raw(s)[: LAYOUT.nbytes].view(torch.float32)[0]) for s in range(4)]
        assert first == [0.0, 1.0, 2.0, 3.0]
        loader.submit(7, 0, DEMAND).wait()
        assert float(fast.raw(0)[: LAYOUT.nbytes].view(torch.float32)[-1]) == 7.0
    finally:
        loader.close()
        disk.close()
    assert loader._proc.poll() is not None  # the reader exits when the loader closes
    # a private (not shared) pool, or the thread choice, keeps the in-process thread
    thread = make_loader(DiskSlowTier(path), FastTier(LAYOUT, 4, "cpu"))
    assert isinstance(thread, ThreadLoader)
    thread.close()


def test_reader_process_reports_a_corrupt_blob_like_the_thread_loader(tmp_path):
    path = tmp_path / "experts.bin"
    write_expert_file(path, LAYOUT, blob)
    disk = DiskSlowTier(path)
    offset = disk.offset + LAYOUT.index(1, 2) * LAYOUT.blob_bytes
    disk.close()
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * 16)
    disk = DiskSlowTier(path)
    fast = FastTier(LAYOUT, 4, "cpu", shared=True)
    geo = CacheGeometry(
        LAYOUT.moe_layers, LAYOUT.num_experts, top_k=2, slots=4, expert_bytes=LAYOUT.nbytes
    )
    cache = ExpertCache(create_policy("lru"), geo, fast, make_loader(disk, fast), H, FF)
    try:
        assert isinstance(cache.loader, ProcessLoader)
        for e in cache.begin_layer(0, [0, 1]):
            gate_up, _ = cache.acquire(0, e)
            assert float(gate_up[0, 0]) == float(LAYOUT.index(0, e))
            cache.release(0, e)
        with pytest.raises(CorruptExpertFile, match="blob 8 fails its checksum"):
            for e in cache.begin_layer(1, [2]):
                cache.acquire(1, e)
    finally:
        cache.close()


def test_engine_logits_identical_with_thread_or_process_loader(tiny_dir, tmp_path):
    loaded = load_model(tiny_dir["olmoe"], cache_dir=tmp_path)
    try:
        outs = []
        for kind in ("process", "thread"):
            model = dataclasses.replace(loaded, loader=kind, _tmpdir=None).build("fate_plus", "1x")
            try:
                expected = ProcessLoader if kind == "process" else ThreadLoader
                assert isinstance(model.cache.loader, expected)
                kv = model.new_kv()
                rows = [model.forward(PROMPT[:8], kv)]
                rows += [model.forward([t], kv) for t in PROMPT[8:]]
                outs.append(torch.cat(rows))
            finally:
                model.close()
        assert torch.equal(outs[0], outs[1])
    finally:
        loaded.close()


def test_reader_process_serves_both_stored_forms_of_the_int4_int2_scheme(tiny_dir, tmp_path):
    # INT4 (variant 0) and INT2 (variant 1) blobs differ in size; slots are sized for INT4.
    # (Which expert loads as which form depends on eviction timing, so logits are compared
    # with the resident model loosely, as in test_moe_quant_engine.)
    loaded = load_model(tiny_dir["olmoe"], cache_dir=tmp_path, quant="int4_int2")
    try:
        model = loaded.build("lru", "1x")
        ref_model = loaded.build("resident")
        try:
            # resident reads every expert as INT4, lru's first loads are INT2
            assert isinstance(model.cache.loader, ProcessLoader)
            assert isinstance(ref_model.cache.loader, ProcessLoader)
            out = model.forward(PROMPT, model.new_kv())
            ref = ref_model.forward(PROMPT, ref_model.new_kv())
            assert model.cache.stats.cold_loads > 0
            cos = torch.nn.functional.cosine_similarity(out.flatten(), ref.flatten(), 0)
            assert float(cos) > 0.9
        finally:
            model.close()
            ref_model.close()
    finally:
        loaded.close()
