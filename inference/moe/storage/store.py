"""The two-tier expert store.

Slow tier: every expert as one contiguous, 4 KiB-aligned blob, either in a file on disk
(read with O_DIRECT, or posix_fadvise(DONTNEED) where O_DIRECT is refused, so the OS page
cache cannot hide the disk) or in (pinned) CPU memory when the fast tier is a GPU.
Fast tier: a fixed pool of slots in RAM or GPU memory sized by the budget; `cache.py`
decides which experts live there.

Blob = gate [I,H] | up [I,H] | down [H,I] in the compute dtype, zero-padded to 4 KiB; or,
for quantized experts (`--quant int8|int4|int4_int2`), the packed `quant.ExpertCodec` blob of the
same three matrices: the slow tier, the transfer and the fast tier then all hold packed bytes
and the cache dequantizes an expert just before its matmul.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from inference.moe.errors import BudgetError, CorruptExpertFile

if TYPE_CHECKING:
    import torch

    from inference.moe.checkpoint import Checkpoint
    from inference.moe.config import MoEConfig
    from inference.moe.storage.quant import ExpertCodec

ALIGN = 4096
MAGIC = b"MEMEXMOE"
VERSION = 1
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def _round_up(n: int, to: int = ALIGN) -> int:
    return (n + to - 1) // to * to


@dataclass(frozen=True)
class ExpertLayout:
    """Where expert (layer, expert) lives: MoE layers in order, experts in order."""

    moe_layers: tuple[int, ...]
    num_experts: int
    numel: int  # elements of one expert (3*I*H)
    dtype: str  # compute dtype name, e.g. "float32" (what a blob decodes to)
    itemsize: int
    bits: int = 0  # 0: plain `dtype` values; 8/4/2: packed quant.ExpertCodec blobs
    hidden: int = 0  # expert shape, needed to size and decode packed blobs
    expert_dim: int = 0
    group_size: int = 32  # gate/up group along H (quant.ExpertCodec)
    down_group_size: int = 0  # down^T group along H (0: quant.ExpertCodec's choice by bits)

    @property
    def nbytes(self) -> int:
        if self.bits:
            return self.codec().nbytes
        return self.numel * self.itemsize

    def codec(self) -> ExpertCodec:
        from inference.moe.storage.quant import ExpertCodec

        return ExpertCodec(
            self.hidden, self.expert_dim, self.bits, self.group_size, self.down_group_size
        )

    def quantized(
        self,
        bits: int,
        hidden: int,
        expert_dim: int,
        group_size: int = 32,
        down_group_size: int = 0,
    ) -> ExpertLayout:
        """The same experts stored as packed `bits`-bit blobs (0: this plain layout)."""
        if not bits:
            return self
        return ExpertLayout(
            self.moe_layers,
            self.num_experts,
            self.numel,
            self.dtype,
            self.itemsize,
            bits,
            hidden,
            expert_dim,
            group_size,
            down_group_size,
        )

    @property
    def blob_bytes(self) -> int:
        return _round_up(self.nbytes)

    @property
    def count(self) -> int:
        return len(self.moe_layers) * self.num_experts

    @property
    def total_bytes(self) -> int:
        return self.count * self.nbytes

    def index(self, layer: int, expert: int) -> int:
        return self.moe_layers.index(layer) * self.num_experts + expert

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "moe_layers": list(self.moe_layers),
            "num_experts": self.num_experts,
            "numel": self.numel,
            "dtype": self.dtype,
            "itemsize": self.itemsize,
        }
        if self.bits:  # plain files keep the original header
            out.update(
                bits=self.bits,
                hidden=self.hidden,
                expert_dim=self.expert_dim,
                group_size=self.group_size,
                down_group_size=self.down_group_size,
            )
        return out


def parse_budget(spec: str | float, layout: ExpertLayout, top_k: int) -> int:
    """Fast-tier bytes for `0.25` (share of all experts), `2GB` or `2x` (2*top_k per layer)."""
    text = str(spec).strip().lower().replace(" ", "")
    try:
        if text.endswith("x"):
            budget = int(float(text[:-1]) * top_k * len(layout.moe_layers) * layout.nbytes)
        elif re.fullmatch(r"[0-9.]+(e-?[0-9]+)?", text) and float(text) <= 1.0:
            budget = int(float(text) * layout.total_bytes)
        else:
            m = re.fullmatch(r"([0-9.]+)([a-z]*)", text)
            if not m or m.group(2) not in _UNITS:
                raise ValueError(text)
            budget = int(float(m.group(1)) * _UNITS[m.group(2)])
    except ValueError:
        raise BudgetError(
            f"Budget {spec!r} is not understood; use a fraction like 0.25, "
            "bytes like 2GB, or a multiple like 2x."
        ) from None
    need = top_k * layout.nbytes
    if budget < need:
        raise BudgetError(
            f"Budget {spec!r} ({budget:,} bytes) is smaller than one layer's "
            f"{top_k} active experts ({need:,} bytes); raise it to at least {need:,} bytes."
        )
    return min(budget, layout.total_bytes)


# -- slow tiers -----------------------------------------------------------------------
class SlowTier(Protocol):
    layout: ExpertLayout

    def read_into(self, index: int, dst: torch.Tensor) -> None:
        """Copy blob `index` into the uint8 slot tensor `dst` (blocking)."""
        ...

    def close(self) -> None: ...


def write_expert_file(
    path: Path, layout: ExpertLayout, blobs: Callable[[int], torch.Tensor]
) -> None:
    """Write all blobs (`blobs(i)` -> flat tensor of the layout dtype) atomically.

    The file appears under its final name only when complete; a crash leaves a `.tmp`.
    """
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    crcs: list[int] = []
    pad = bytes(layout.blob_bytes - layout.nbytes)
    try:
        with open(tmp, "wb") as f:
            f.write(bytes(ALIGN))  # header placeholder, rewritten below
            header_blocks = _round_up(64 + 12 * layout.count + 512) // ALIGN
            f.write(bytes(ALIGN * (header_blocks - 1)))
            for i in range(layout.count):
                data = blobs(i).contiguous().view(torch.uint8).numpy().tobytes()
                if len(data) != layout.nbytes:
                    raise CorruptExpertFile(
                        f"Expert {i} has {len(data)} bytes, expected {layout.nbytes}."
                    )
                crcs.append(zlib.crc32(data))
                f.write(data)
                f.write(pad)
            meta = json.dumps(
                {"layout": layout.to_json(), "crc32": crcs, "data_offset": header_blocks * ALIGN}
            )
            head = MAGIC + struct.pack("<II", VERSION, len(meta)) + meta.encode()
            if len(head) > header_blocks * ALIGN:
                raise RuntimeError("expert file header overflow")  # pragma: no cover - sized above
            f.seek(0)
            f.write(head)
            f.flush()
            os.fsync(f.fileno())
            _drop_cache(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _drop_cache(fd: int) -> None:
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def read_header(path: Path) -> tuple[ExpertLayout, list[int], int]:
    """(layout, crc32 per blob, data offset); any inconsistency is a CorruptExpertFile."""
    bad = (
        f"The expert file {path} is corrupt; delete it and it will be rebuilt from the checkpoint."
    )
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            if len(head) < 16 or head[:8] != MAGIC:
                raise CorruptExpertFile(bad)
            version, n = struct.unpack("<II", head[8:16])
            meta = json.loads(f.read(n).decode())
        lj = meta["layout"]
        layout = ExpertLayout(
            tuple(lj["moe_layers"]),
            int(lj["num_experts"]),
            int(lj["numel"]),
            str(lj["dtype"]),
            int(lj["itemsize"]),
            int(lj.get("bits", 0)),
            int(lj.get("hidden", 0)),
            int(lj.get("expert_dim", 0)),
            int(lj.get("group_size", 32)),
            int(lj.get("down_group_size", 0)),
        )
        crcs = [int(c) for c in meta["crc32"]]
        offset = int(meta["data_offset"])
    except CorruptExpertFile:
        raise
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CorruptExpertFile(bad) from exc
    if version != VERSION or len(crcs) != layout.count or offset % ALIGN:
        raise CorruptExpertFile(bad)
    if path.stat().st_size != offset + layout.count * layout.blob_bytes:
        raise CorruptExpertFile(bad)
    return layout, crcs, offset


class DiskSlowTier:
    """Experts in one file; reads bypass (O_DIRECT) or evict (fadvise) the page cache."""

    def __init__(
        self, path: Path, expected: ExpertLayout | None = None, direct: bool = True
    ) -> None:
        self.path = Path(path)
        self.layout, self._crcs, self._offset = read_header(self.path)
        if expected is not None and expected != self.layout:
            raise CorruptExpertFile(
                f"The expert file {self.path} does not match the model; "
                "delete it and it will be rebuilt."
            )
        self._verified = bytearray(self.layout.count)
        self.direct = False
        self._fd = -1
        if direct and hasattr(os, "O_DIRECT"):
            try:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECT)
                self.direct = True
            except OSError:
                self._fd = -1
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_RDONLY)

    @property
    def offset(self) -> int:
        """Byte offset of blob 0 in the file."""
        return self._offset

    def read_into(self, index: int, dst: torch.Tensor) -> None:
        # dst: uint8 [>= blob_bytes], 4 KiB aligned (FastTier guarantees it) for O_DIRECT
        self.read_buffer(index, dst.numpy().data)

    def read_buffer(self, index: int, buf: memoryview) -> None:
        """`read_into` for a writable byte buffer (>= blob_bytes, 4 KiB aligned): the
        loader keeps one per slot, so a read costs no tensor work on its thread."""
        view = buf[: self.layout.blob_bytes]
        offset = self._offset + index * self.layout.blob_bytes
        try:
            n = os.preadv(self._fd, [view], offset)
        except OSError:
            if not self.direct:
                raise
            # some filesystems accept O_DIRECT at open but not at read: fall back for good
            os.close(self._fd)
            self._fd, self.direct = os.open(self.path, os.O_RDONLY), False
            n = os.preadv(self._fd, [view], offset)
        if not self.direct:
            os.posix_fadvise(self._fd, offset, self.layout.blob_bytes, os.POSIX_FADV_DONTNEED)
        if n != self.layout.blob_bytes:
            raise CorruptExpertFile(
                f"The expert file {self.path} is truncated; delete it and it will be rebuilt."
            )
        if not self._verified[index]:
            # each blob is checked once per process: later reads of it are trusted
            if zlib.crc32(view[: self.layout.nbytes]) != self._crcs[index]:
                raise CorruptExpertFile(
                    f"The expert file {self.path} is corrupt "
                    f"(expert blob {index} fails its checksum); "
                    "delete it and it will be rebuilt."
                )
            self._verified[index] = 1

    def verify_all(self) -> None:
        """Check every blob's checksum now (one read pass), so timed reads later skip it."""
        buf = aligned_empty(self.layout.blob_bytes)
        for index in range(self.layout.count):
            if not self._verified[index]:
                self.read_into(index, buf)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class MemorySlowTier:
    """All blobs in CPU memory ([count, blob_bytes] uint8), pinned when a GPU reads them."""

    def __init__(self, layout: ExpertLayout, data: torch.Tensor) -> None:
        self.layout = layout
        self.data = data  # uint8 [count, blob_bytes]

    @classmethod
    def from_disk(cls, disk: DiskSlowTier, pin: bool) -> MemorySlowTier:
        import torch

        lay = disk.layout
        data = torch.empty((lay.count, lay.blob_bytes), dtype=torch.uint8, pin_memory=pin)
        tmp = aligned_empty(lay.blob_bytes)
        for i in range(lay.count):
            disk.read_into(i, tmp)
            data[i].copy_(tmp)
        return cls(lay, data)

    def read_into(self, index: int, dst: torch.Tensor) -> None:
        # dst may be a larger slot (int4_int2 scheme: INT2 blobs land in INT4-sized slots)
        dst[: self.layout.blob_bytes].copy_(self.data[index], non_blocking=dst.is_cuda)

    def close(self) -> None:
        self.data = None  # type: ignore[assignment]


def aligned_empty(nbytes: int, count: int = 1) -> torch.Tensor:
    """uint8 CPU tensor [count, nbytes] whose rows start on 4 KiB boundaries (for O_DIRECT)."""
    import torch

    row = _round_up(nbytes)
    raw = torch.empty(row * count + ALIGN, dtype=torch.uint8)
    shift = (-raw.data_ptr()) % ALIGN
    out = raw[shift : shift + row * count].view(count, row)
    return out[0] if count == 1 else out


class FastTier:
    """`slots` expert-sized buffers on the compute device; a slot holds one expert's blob."""

    def __init__(self, layout: ExpertLayout, slots: int, device: str, shared: bool = False) -> None:
        import torch

        self.layout = layout
        self.slots = slots
        self.device = device
        self._views: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._codecs: dict[int, ExpertCodec] = {}
        self.shared_fd: int | None = None  # memfd of a shared pool (a reader process fills it)
        self.shared_bytes = 0
        if device == "cpu" and shared and hasattr(os, "memfd_create") and slots > 0:
            import mmap
            import weakref

            self.shared_bytes = layout.blob_bytes * slots
            fd = os.memfd_create("memex-moe-fast-tier", getattr(os, "MFD_CLOEXEC", 0))
            os.ftruncate(fd, self.shared_bytes)
            self._mmap = mmap.mmap(fd, self.shared_bytes)  # page aligned: fine for O_DIRECT
            self.shared_fd = fd
            weakref.finalize(self, os.close, fd)
            self.pool = torch.frombuffer(self._mmap, dtype=torch.uint8).view(
                slots, layout.blob_bytes
            )
        elif device == "cpu":
            self.pool = aligned_empty(layout.blob_bytes, max(slots, 2))[:slots]
        else:
            self.pool = torch.empty((slots, layout.blob_bytes), dtype=torch.uint8, device=device)

    @property
    def nbytes(self) -> int:
        return self.slots * self.layout.nbytes

    def raw(self, slot: int) -> torch.Tensor:
        return self.pool[slot]

    def decode(self, slot: int, stored: ExpertLayout) -> tuple[torch.Tensor, torch.Tensor]:
        """(gate_up [2I,H], down [H,I]) dequantized from the packed blob in `slot`.

        Runs just before the matmul, into fresh tensors of the compute dtype; plain blobs
        need no decoding (`weights` gives views).
        """
        import torch

        codec = self._codecs.get(stored.bits)
        if codec is None:
            codec = self._codecs[stored.bits] = stored.codec()
        return codec.decode(self.pool[slot], getattr(torch, stored.dtype))

    def weights(self, slot: int, hidden: int, expert_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(gate_up [2I,H], down [H,I]) views into the slot (made once per slot)."""
        views = self._views.get(slot)
        if views is None:
            import torch

            dtype = getattr(torch, self.layout.dtype)
            flat = self.pool[slot][: self.layout.nbytes].view(dtype)
            gate_up = flat[: 2 * expert_dim * hidden].view(2 * expert_dim, hidden)
            down = flat[2 * expert_dim * hidden :].view(hidden, expert_dim)
            views = self._views[slot] = (gate_up, down)
        return views


def expert_layout(cfg: MoEConfig, dtype: torch.dtype, bits: int = 0) -> ExpertLayout:
    """The slow-tier layout of `cfg`'s experts computed in `dtype`, stored plain or packed."""
    import torch

    plain = ExpertLayout(
        cfg.moe_layers,
        cfg.num_experts,
        cfg.expert_numel,
        str(dtype).removeprefix("torch."),
        torch.empty((), dtype=dtype).element_size(),
    )
    return plain.quantized(bits, cfg.hidden_size, cfg.expert_dim)


def build_expert_file(
    ckpt: Checkpoint, cfg: MoEConfig, path: Path, dtype: torch.dtype, bits: int = 0
) -> ExpertLayout:
    """Validate every expert tensor first, then stream them into `path` (atomic).

    bits 8/4/2: each blob is the expert packed by `quant.ExpertCodec` (quantized from the
    checkpoint's own values in fp32, whatever the compute dtype).
    """
    import torch

    ckpt.validate_experts(cfg)
    layout = expert_layout(cfg, dtype, bits)
    codec = layout.codec() if bits else None

    def blob(i: int) -> torch.Tensor:
        layer = cfg.moe_layers[i // cfg.num_experts]
        gate, up, down = ckpt.expert(cfg, layer, i % cfg.num_experts)
        if codec is not None:
            return codec.encode(gate.float(), up.float(), down.float())
        return torch.cat([gate.reshape(-1), up.reshape(-1), down.reshape(-1)]).to(dtype)

    write_expert_file(path, layout, blob)
    return layout
