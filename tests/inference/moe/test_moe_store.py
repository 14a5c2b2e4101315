"""Budget parsing, the expert file (atomic, checksummed), slow and fast tiers."""

from __future__ import annotations

import os

import pytest
import torch

from inference.moe.errors import BudgetError, CorruptExpertFile
from inference.moe.storage.store import (
    ALIGN,
    DiskSlowTier,
    ExpertLayout,
    FastTier,
    MemorySlowTier,
    parse_budget,
    write_expert_file,
)

LAYOUT = ExpertLayout(
    moe_layers=(0, 1, 2, 3), num_experts=8, numel=3 * 16 * 8, dtype="float32", itemsize=4
)


def blobs(i: int) -> torch.Tensor:
    return torch.arange(LAYOUT.numel, dtype=torch.float32) + 1000 * i


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("0.25", LAYOUT.total_bytes // 4),
        ("1", LAYOUT.total_bytes),
        ("2x", 2 * 2 * 4 * LAYOUT.nbytes),  # room for 2*top_k experts in each of 4 layers
        ("1.5x", int(1.5 * 2 * 4 * LAYOUT.nbytes)),
        ("10KB", 10_000),
        ("8KiB", 8192),
        ("1GB", LAYOUT.total_bytes),  # clamped to everything
    ],
)
def test_parse_budget(spec, expected):
    assert parse_budget(spec, LAYOUT, top_k=2) == expected


@pytest.mark.parametrize("spec", ["lots", "2y", "-1", "GB"])
def test_parse_budget_rejects_nonsense(spec):
    with pytest.raises(BudgetError, match="not understood"):
        parse_budget(spec, LAYOUT, top_k=2)


def test_budget_smaller_than_one_layers_active_experts():
    with pytest.raises(BudgetError, match="smaller than one layer's 2 active experts"):
        parse_budget("1KB", LAYOUT, top_k=2)


def test_expert_file_roundtrip_direct_io(tmp_path):
    path = tmp_path / "experts.bin"
    write_expert_file(path, LAYOUT, blobs)
    assert not list(tmp_path.glob("*.tmp"))
    disk = DiskSlowTier(path, expected=LAYOUT)
    fast = FastTier(LAYOUT, 3, "cpu")
    assert fast.raw(1).data_ptr() % ALIGN == 0  # O_DIRECT needs aligned buffers
    for i in (0, 17, 31):
        disk.read_into(i, fast.raw(1))
        assert torch.equal(fast.raw(1)[: LAYOUT.nbytes].view(torch.float32), blobs(i))
    mem = MemorySlowTier.from_disk(disk, pin=False)
    mem.read_into(5, fast.raw(0))
    assert torch.equal(fast.raw(0)[: LAYOUT.nbytes].view(torch.float32), blobs(5))
    disk.close()


def test_failed_write_leaves_nothing(tmp_path):
    def broken(i: int) -> torch.Tensor:
        if i == 3:
            raise RuntimeError("disk full")
        return blobs(i)

    with pytest.raises(RuntimeError):
        write_expert_file(tmp_path / "experts.bin", LAYOUT, broken)
    assert list(tmp_path.iterdir()) == []


def _written(tmp_path):
    path = tmp_path / "experts.bin"
    write_expert_file(path, LAYOUT, blobs)
    return path


def test_corrupt_header_is_detected(tmp_path):
    path = _written(tmp_path)
    with open(path, "r+b") as f:
        f.write(b"GARBAGE!")
    with pytest.raises(CorruptExpertFile, match="corrupt; delete it"):
        DiskSlowTier(path)


def test_truncated_file_is_detected(tmp_path):
    path = _written(tmp_path)
    os.truncate(path, os.path.getsize(path) - ALIGN)
    with pytest.raises(CorruptExpertFile):
        DiskSlowTier(path)


def test_flipped_byte_fails_the_checksum(tmp_path):
    path = _written(tmp_path)
    disk = DiskSlowTier(path)
    offset = disk._offset + 5 * LAYOUT.blob_bytes + 100
    disk.close()
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
    disk = DiskSlowTier(path)
    buf = FastTier(LAYOUT, 1, "cpu").raw(0)
    disk.read_into(4, buf)  # untouched blobs still read
    with pytest.raises(CorruptExpertFile, match="blob 5 fails its checksum"):
        disk.read_into(5, buf)
    disk.close()


def test_layout_mismatch_is_detected(tmp_path):
    path = _written(tmp_path)
    other = ExpertLayout((0, 1, 2, 3), 8, LAYOUT.numel, "bfloat16", 2)
    with pytest.raises(CorruptExpertFile, match="does not match the model"):
        DiskSlowTier(path, expected=other)
