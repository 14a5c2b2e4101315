"""Group-wise asymmetric INT8 / INT4 / INT2 expert weights, packed for real (not fake-quant).

Each row of a weight matrix is cut into groups of `group_size` input columns; a group keeps
its minimum and step (fp16) and its values as `bits`-bit integers, packed 8/bits to a byte.
Dequantization happens just before the matmul, so the slow tier, the transfer and the cache
all hold the packed bytes (~bits/32 of fp32 plus 4 bytes per group).

`ExpertCodec` turns one expert (gate [I,H], up [I,H], down [H,I]) into one flat uint8 blob of
a fixed size and back, which is what the expert store moves around. Schemes (`--quant`):
`none` (exact fp32), `int8`, `int4`, and `fate` (Fate's scheme: experts kept in the cache as
INT4, rarely used prefetches and on-demand misses moved as INT2).
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
        raise QuantError(f"{cols} columns cannot be split into groups of whole bytes of {bits}-bit codes.")
    return group


def _check(shape: tuple[int, int], bits: int, group_size: int) -> None:
    if bits not in SUPPORTED_BITS:
        raise QuantError(f"{bits}-bit quantization is not supported; use one of {SUPPORTED_BITS}.")
    if shape[1] % group_size or group_size % (8 // bits):
        raise QuantError(f"{shape[1]} columns cannot be split into groups of {group_size} for {bits}-bit codes.")


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
    q = torch.round((w - minimum.float().unsqueeze(2)) / scale.float().unsqueeze(2)).clamp_(0, levels)
    codes = q.to(torch.uint8).reshape(rows, cols // (8 // bits), 8 // bits)  # [R, C*b/8, 8/b]
    shifts = torch.arange(0, 8, bits, dtype=torch.uint8)  # [8/b]
    packed = (codes << shifts).sum(dim=2, dtype=torch.uint8) if bits < 8 else codes[..., 0]
    return QuantizedTensor(packed.contiguous(), scale.contiguous(), minimum.contiguous(),
                           (rows, cols), bits, group_size)


def unpack_codes(packed: torch.Tensor, bits: int) -> torch.Tensor:
    """uint8 [R, C*b/8] -> uint8 codes [R, C]."""
    import torch

    if bits == 8:
        return packed
    shifts = torch.arange(0, 8, bits, dtype=torch.uint8, device=packed.device)  # [8/b]
    mask = (1 << bits) - 1
    codes = (packed.unsqueeze(2) >> shifts) & mask  # [R, C*b/8, 8/b]
    return codes.reshape(packed.shape[0], -1)


def dequantize(qt: QuantizedTensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Back to a dense [rows, cols] matrix (float32 unless dtype says otherwise)."""
    import torch

    rows, cols = qt.shape
    groups = cols // qt.group_size
    codes = unpack_codes(qt.packed, qt.bits).reshape(rows, groups, qt.group_size).float()  # [R, G, g]
    w = codes * qt.scale.float().unsqueeze(2) + qt.minimum.float().unsqueeze(2)
    return w.reshape(rows, cols).to(dtype or torch.float32)


# -- one expert as one blob ----------------------------------------------------------------
@dataclass(frozen=True)
class ExpertCodec:
    """Fixed-size uint8 blob <-> (gate_up [2I, H], down [H, I]) for one expert shape.

    bits = 32 means plain float32 (exact). Blob = gate | up | down, each as packed codes,
    then scales, then minimums.
    """

    hidden: int
    expert_dim: int
    bits: int = 32
    group_size: int = 64

    def __post_init__(self) -> None:
        if self.bits != 32:
            for shape in self._shapes():
                group_for(shape[1], self.bits, self.group_size)

    def _shapes(self) -> tuple[tuple[int, int], ...]:
        i, h = self.expert_dim, self.hidden
        return ((i, h), (i, h), (h, i))

    @property
    def nbytes(self) -> int:
        if self.bits == 32:
            return 3 * self.hidden * self.expert_dim * 4
        return sum(packed_nbytes(s, self.bits, group_for(s[1], self.bits, self.group_size)) for s in self._shapes())

    def encode(self, gate: torch.Tensor, up: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
        """The expert as a flat uint8 tensor of exactly `nbytes`."""
        import torch

        mats = (gate, up, down)
        for m, s in zip(mats, self._shapes()):
            if tuple(m.shape) != s:
                raise QuantError(f"Expert tensor of shape {tuple(m.shape)} does not match {s}.")
        if self.bits == 32:
            return torch.cat([m.detach().float().reshape(-1) for m in mats]).view(torch.uint8)
        parts = []
        for m in mats:
            qt = quantize(m, self.bits, group_for(m.shape[1], self.bits, self.group_size))
            parts += [qt.packed.reshape(-1), qt.scale.reshape(-1).view(torch.uint8),
                      qt.minimum.reshape(-1).view(torch.uint8)]
        return torch.cat(parts)

    def decode(self, blob: torch.Tensor, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(gate_up [2I, H], down [H, I]) from a blob (extra trailing padding is ignored)."""
        import torch

        if blob.numel() < self.nbytes:
            raise QuantError(f"Expert blob has {blob.numel()} bytes, expected {self.nbytes}.")
        dtype = dtype or torch.float32
        i, h = self.expert_dim, self.hidden
        if self.bits == 32:
            flat = blob[: self.nbytes].view(torch.float32)
            gate_up = flat[: 2 * i * h].view(2 * i, h)
            return gate_up.to(dtype), flat[2 * i * h:].view(h, i).to(dtype)
        mats, pos = [], 0
        for shape in self._shapes():
            rows, cols = shape
            group = group_for(cols, self.bits, self.group_size)
            n_codes = rows * cols * self.bits // 8
            n_groups = rows * (cols // group)
            packed = blob[pos: pos + n_codes].view(rows, -1)
            pos += n_codes
            scale = blob[pos: pos + 2 * n_groups].view(torch.float16).view(rows, -1)
            pos += 2 * n_groups
            minimum = blob[pos: pos + 2 * n_groups].view(torch.float16).view(rows, -1)
            pos += 2 * n_groups
            mats.append(dequantize(QuantizedTensor(packed, scale, minimum, shape, self.bits, group), dtype))
        return torch.cat(mats[:2]), mats[2]


@dataclass(frozen=True)
class QuantScheme:
    """Bits for experts kept in the cache, and for rarely used prefetches and misses."""

    name: str
    cached_bits: int
    cold_bits: int
    group_size: int = 64

    @property
    def exact(self) -> bool:
        return self.cached_bits == 32 and self.cold_bits == 32

    def codec(self, hidden: int, expert_dim: int, cold: bool = False) -> ExpertCodec:
        return ExpertCodec(hidden, expert_dim, self.cold_bits if cold else self.cached_bits, self.group_size)


QUANT_SCHEMES: dict[str, QuantScheme] = {
    "none": QuantScheme("none", 32, 32),
    "int8": QuantScheme("int8", 8, 8),
    "int4": QuantScheme("int4", 4, 4),
    "fate": QuantScheme("fate", 4, 2),
}


def get_scheme(name: str) -> QuantScheme:
    try:
        return QUANT_SCHEMES[name]
    except KeyError:
        raise QuantError(f"Unknown --quant {name!r}; choose one of: {', '.join(QUANT_SCHEMES)}.") from None


def roundtrip(weight: torch.Tensor, bits: int, group_size: int = 64) -> torch.Tensor:
    """weight after pack + unpack (what the engine computes with), for accuracy studies."""
    if bits == 32:
        return weight.float()
    return dequantize(quantize(weight, bits, group_for(weight.shape[1], bits, group_size)))
