"""Group-wise asymmetric INT8 / INT4 / INT2 expert weights, packed for real (not fake-quant).

Each row of a weight matrix is cut into groups of `group_size` input columns; a group keeps
its minimum and step (fp16) and its values as `bits`-bit integers, packed 8/bits to a byte.
Dequantization happens just before the matmul, so the slow tier, the transfer and the cache
all hold the packed bytes (~bits/32 of fp32 plus 4 bytes per group).

`ExpertCodec` turns one expert (gate [I,H], up [I,H], down [H,I]) into one flat uint8 blob of
a fixed size and back, which is what the expert store moves around. Schemes (`--quant`):
`none` (exact fp32), `int8`, `int4`, and `int4_int2` (Fate's scheme: experts kept in the cache
as INT4, rarely used prefetches and on-demand misses moved as INT2). `int4_int2` was called
`fate`, the name of a cache policy too; `fate` stays accepted (`QUANT_ALIASES`) so saved
settings keep working.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SUPPORTED_BITS = (2, 4, 8)


class QuantError(ValueError):
    """A tensor or blob that cannot be (de)quantized with the requested settings."""


@dataclass(frozen=True)
class QuantizedTensor:
    """A [rows, cols] matrix in packed form."""

    packed: torch.Tensor  # uint8 [rows, cols * bits / 8]
    scale: torch.Tensor  # float16 [rows, cols / group_size] step between levels
    minimum: torch.Tensor  # float16 [rows, cols / group_size] value of level 0
    shape: tuple[int, int]
    bits: int
    group_size: int

    @property
    def nbytes(self) -> int:
        return packed_nbytes(self.shape, self.bits, self.group_size)

    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        return dequantize(self, dtype)


def packed_nbytes(shape: tuple[int, int], bits: int, group_size: int) -> int:
    """Bytes of one packed matrix: codes plus an fp16 (scale, minimum) pair per group."""
    rows, cols = shape
    return rows * cols * bits // 8 + rows * (cols // group_size) * 4


def group_for(cols: int, bits: int, group_size: int) -> int:
    """The group size used for `cols` columns: group_size, or the largest divisor of cols below it
    (expert down projections are only I/E columns wide, e.g. 24)."""
    group = math.gcd(cols, group_size)
    if bits not in SUPPORTED_BITS:
        raise QuantError(f"{bits}-bit quantization is not supported; use one of {SUPPORTED_BITS}.")
    if group % (8 // bits):
        raise QuantError(
            f"{cols} columns cannot be split into groups of whole bytes of {bits}-bit codes."
        )
    return group


def _check(shape: tuple[int, int], bits: int, group_size: int) -> None:
    if bits not in SUPPORTED_BITS:
        raise QuantError(f"{bits}-bit quantization is not supported; use one of {SUPPORTED_BITS}.")
    if shape[1] % group_size or group_size % (8 // bits):
        raise QuantError(
            f"{shape[1]} columns cannot be split into groups of {group_size} for {bits}-bit codes."
        )


def quantize(weight: torch.Tensor, bits: int, group_size: int = 64) -> QuantizedTensor:
    """Pack weight [rows, cols] with one asymmetric (min, step) pair per `group_size` columns."""
    import torch

    rows, cols = weight.shape
    _check((rows, cols), bits, group_size)
    levels = (1 << bits) - 1
    w = weight.detach().float().reshape(rows, cols // group_size, group_size)  # [R, G, g]
    lo = w.amin(dim=2)  # [R, G]
    hi = w.amax(dim=2)
    # Round the group constants to fp16 first and quantize against the rounded values, so the
    # stored (scale, minimum) are exactly what dequantization uses.
    minimum = lo.half()
    scale = ((hi - minimum.float()) / levels).clamp_min(1e-8).half()
    scale = torch.where(scale == 0, torch.full_like(scale, 6e-8), scale)  # fp16 underflow guard
    q = torch.round((w - minimum.float().unsqueeze(2)) / scale.float().unsqueeze(2)).clamp_(
        0, levels
    )
    # planar packing: byte m of a row holds the codes of columns m, m + C/n, m + 2C/n, ...
    # (n = 8/bits codes a byte), so unpacking writes n contiguous column blocks, no interleave
    per = 8 // bits
    planes = q.to(torch.uint8).reshape(rows, per, cols // per)  # [R, n, C/n]
    packed = planes[:, 0].clone()
    for j in range(1, per):
        packed |= planes[:, j] << (bits * j)
    return QuantizedTensor(
        packed.contiguous(),
        scale.contiguous(),
        minimum.contiguous(),
        (rows, cols),
        bits,
        group_size,
    )


def unpack_into(packed: torch.Tensor, bits: int, out: torch.Tensor) -> torch.Tensor:
    """Codes of packed uint8 [R, C*b/8] written into out [R, C] (any dtype: the copy converts)."""
    per = 8 // bits
    width = packed.shape[-1]
    mask = (1 << bits) - 1
    for j in range(per):  # leading batch dimensions pass through (a wave of experts)
        part = packed if j == 0 else packed >> (bits * j)
        out[..., j * width : (j + 1) * width] = part & mask if j < per - 1 else part
    return out


def unpack_codes(packed: torch.Tensor, bits: int) -> torch.Tensor:
    """uint8 [R, C*b/8] -> uint8 codes [R, C]."""
    import torch

    if bits == 8:
        return packed
    out = torch.empty(
        packed.shape[0], packed.shape[1] * 8 // bits, dtype=torch.uint8, device=packed.device
    )
    return unpack_into(packed, bits, out)


def dequantize(qt: QuantizedTensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Back to a dense [rows, cols] matrix (float32 unless dtype says otherwise)."""
    import torch

    rows, cols = qt.shape
    groups = cols // qt.group_size
    codes = (
        unpack_codes(qt.packed, qt.bits).reshape(rows, groups, qt.group_size).float()
    )  # [R, G, g]
    w = codes * qt.scale.float().unsqueeze(2) + qt.minimum.float().unsqueeze(2)
    return w.reshape(rows, cols).to(dtype or torch.float32)


# -- one expert as one blob ----------------------------------------------------------------
CODEC_VERSION = 5  # part of packed expert file names: bump when the blob layout changes


@dataclass(frozen=True)
class ExpertCodec:
    """Fixed-size uint8 blob <-> (gate_up [2I, H], down [H, I]) for one expert shape.

    bits = 32 means plain float32 (exact). Packed blobs hold ONE [3I, H] matrix -- gate, up
    and the transposed down projection stacked -- as codes, then the fp16 scales and minimums
    of gate/up (groups of `group_size` along H), then those of down^T (groups of
    `down_group_size` along H; 0 = 4 below 8 bits, 32 at 8 bits). One matrix means an expert
    is dequantized in a handful of tensor ops (this runs for every expert use of every
    decoded token). Down projections get small groups: measured on the MoEfied testbed's real
    activations, INT4 expert outputs are off by 14% (relative L2) with groups of 64
    everywhere, 4.8% with 32 for gate/up and 8 for down, 2.9% with 4 for down, at 0.23x
    the fp32 bytes. (The testbed's gate/up come from a Q4_1 GGUF, whose 32-wide blocks INT4
    with groups of 32 reproduces exactly; down's blocks run along the dense intermediate
    axis, which MoEfication scatters over experts.)
    """

    hidden: int
    expert_dim: int
    bits: int = 32
    group_size: int = 32
    down_group_size: int = 0

    def __post_init__(self) -> None:
        if self.bits != 32:
            group_for(self.hidden, self.bits, self.group_size)
            group_for(self.hidden, self.bits, self._down_group)

    @property
    def _down_group(self) -> int:
        return self.down_group_size or (32 if self.bits >= 8 else 4)

    @property
    def groups(self) -> tuple[int, int]:
        """(gate/up group, down^T group) sizes actually used for this hidden size."""
        return (
            group_for(self.hidden, self.bits, self.group_size),
            group_for(self.hidden, self.bits, self._down_group),
        )

    @property
    def nbytes(self) -> int:
        i, h = self.expert_dim, self.hidden
        if self.bits == 32:
            return 3 * h * i * 4
        g1, g2 = self.groups
        return packed_nbytes((2 * i, h), self.bits, g1) + packed_nbytes((i, h), self.bits, g2)

    def encode(self, gate: torch.Tensor, up: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
        """The expert as a flat uint8 tensor of exactly `nbytes`."""
        import torch

        i, h = self.expert_dim, self.hidden
        for m, shape in zip((gate, up, down), ((i, h), (i, h), (h, i))):
            if tuple(m.shape) != shape:
                raise QuantError(f"Expert tensor of shape {tuple(m.shape)} does not match {shape}.")
        if self.bits == 32:
            return torch.cat([m.detach().float().reshape(-1) for m in (gate, up, down)]).view(
                torch.uint8
            )
        g1, g2 = self.groups
        gu = quantize(
            torch.cat([gate.detach().float(), up.detach().float()]), self.bits, g1
        )  # [2I, H]
        dt = quantize(down.detach().float().T.contiguous(), self.bits, g2)  # [I, H]
        return torch.cat(
            [gu.packed.reshape(-1), dt.packed.reshape(-1)]
            + [
                t.reshape(-1).view(torch.uint8)
                for t in (gu.scale, gu.minimum, dt.scale, dt.minimum)
            ]
        )

    def decode(
        self, blob: torch.Tensor, dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(gate_up [2I, H], down [H, I]) from a blob (extra trailing padding is ignored).

        For packed blobs `down` is a transposed view of the decoded [3I, H] matrix
        (F.linear takes it as is; no copy)."""
        import torch

        if blob.numel() < self.nbytes:
            raise QuantError(f"Expert blob has {blob.numel()} bytes, expected {self.nbytes}.")
        dtype = dtype or torch.float32
        i, h = self.expert_dim, self.hidden
        if self.bits == 32:
            flat = blob[: self.nbytes].view(torch.float32)
            gate_up = flat[: 2 * i * h].view(2 * i, h)
            return gate_up.to(dtype), flat[2 * i * h :].view(h, i).to(dtype)
        g1, g2 = self.groups
        n_codes = 3 * i * h * self.bits // 8
        w = torch.empty(3 * i, h, dtype=dtype, device=blob.device)  # [3I, H]
        unpack_into(blob[:n_codes].view(3 * i, -1), self.bits, w)  # codes as floats, one pass
        pos = n_codes
        for rows, group in ((w[: 2 * i], g1), (w[2 * i :], g2)):
            n = rows.shape[0] * (h // group)
            scale = blob[pos : pos + 2 * n].view(torch.float16).view(rows.shape[0], -1, 1)
            minimum = blob[pos + 2 * n : pos + 4 * n].view(torch.float16).view(rows.shape[0], -1, 1)
            pos += 4 * n
            rows.view(rows.shape[0], -1, group).mul_(scale.to(dtype)).add_(minimum.to(dtype))
        return w[: 2 * i], w[2 * i :].T

    def decode_batch(
        self, blobs: torch.Tensor, dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Packed blobs [n, >= nbytes] -> (gate_up [n, 2I, H], down^T [n, I, H]) in one pass:
        the same ops as `decode`, over the whole wave of experts at once (so each value is
        bit-identical to decoding its expert alone)."""
        import torch

        if self.bits == 32 or blobs.dim() != 2 or blobs.shape[1] < self.nbytes:
            raise QuantError("decode_batch takes packed blobs [n, nbytes] of a quantized codec.")
        dtype = dtype or torch.float32
        n, i, h = blobs.shape[0], self.expert_dim, self.hidden
        g1, g2 = self.groups
        n_codes = 3 * i * h * self.bits // 8
        w = torch.empty(n, 3 * i, h, dtype=dtype, device=blobs.device)  # [n, 3I, H]
        unpack_into(blobs[:, :n_codes].unflatten(1, (3 * i, -1)), self.bits, w)
        pos = n_codes
        for rows, group in ((w[:, : 2 * i], g1), (w[:, 2 * i :], g2)):
            m = rows.shape[1] * (h // group)
            scale = (
                blobs[:, pos : pos + 2 * m].view(torch.float16).unflatten(1, (rows.shape[1], -1, 1))
            )
            minimum = (
                blobs[:, pos + 2 * m : pos + 4 * m]
                .view(torch.float16)
                .unflatten(1, (rows.shape[1], -1, 1))
            )
            pos += 4 * m
            rows.unflatten(2, (-1, group)).mul_(scale.to(dtype)).add_(minimum.to(dtype))
        return w[:, : 2 * i], w[:, 2 * i :]


@dataclass(frozen=True)
class QuantScheme:
    """Bits for experts kept in the cache, and for rarely used prefetches and misses."""

    name: str
    cached_bits: int
    cold_bits: int
    group_size: int = 32
    down_group_size: int = 0  # 0: ExpertCodec's choice by bits

    @property
    def exact(self) -> bool:
        return self.cached_bits == 32 and self.cold_bits == 32

    def codec(self, hidden: int, expert_dim: int, cold: bool = False) -> ExpertCodec:
        return ExpertCodec(
            hidden,
            expert_dim,
            self.cold_bits if cold else self.cached_bits,
            self.group_size,
            self.down_group_size,
        )


QUANT_SCHEMES: dict[str, QuantScheme] = {
    "none": QuantScheme("none", 32, 32),
    "int8": QuantScheme("int8", 8, 8),
    "int4": QuantScheme("int4", 4, 4),
    "int4_int2": QuantScheme("int4_int2", 4, 2),
}
QUANT_ALIASES: dict[str, str] = {"fate": "int4_int2"}  # the scheme's name before the rename


def quant_name(name: str) -> str:
    """The scheme `name` means (an old alias resolved); UnknownName if none."""
    from inference.moe.errors import unknown

    name = QUANT_ALIASES.get(name, name)
    if name not in QUANT_SCHEMES:
        raise unknown("--quant", name, QUANT_SCHEMES)
    return name


def get_scheme(name: str) -> QuantScheme:
    return QUANT_SCHEMES[quant_name(name)]


def roundtrip(weight: torch.Tensor, bits: int, group_size: int = 64) -> torch.Tensor:
    """weight after pack + unpack (what the engine computes with), for accuracy studies."""
    if bits == 32:
        return weight.float()
    return dequantize(quantize(weight, bits, group_for(weight.shape[1], bits, group_size)))
