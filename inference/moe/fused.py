"""Fused expert compute: one grouped GEMM per wave of ready experts, straight from the slab.

The fast tier is one preallocated slab ([slots, blob] bytes). For plain blobs the slab is
viewed as gate_up [S, 2I, H] and down [S, H, I] without a copy, and `torch._grouped_mm`
multiplies each token row with the expert of its slot: rows sorted by slot, `offs` the
running row count per slot (slots that serve no row get an empty group). Two grouped GEMMs
and one SiLU-gate per wave replace the four ops per expert of the loop path.

Packed (INT8/INT4/INT2) experts of a wave are gathered from their slots in one
`index_select` and dequantized together (`quant.ExpertCodec.decode_batch`: a handful of
tensor ops per wave, not per expert), then multiplied the same way.

A "wave" is what is ready when compute asks: experts whose loads are still in flight form
later waves, so compute still overlaps the reads of the slow tier (on_demand degrades to one
expert per wave, the loop path's behaviour). A row's result does not depend on the wave it
ran in (each group is its own GEMM), so every policy stays bit-identical to every other.

Where `torch._grouped_mm` is missing or refuses the dtype/device (CUDA wants bf16 on recent
cards), `grouped_supported` says so once and the model uses the per-expert loop.

Not done: capturing a CUDA graph per layer shape. A wave's size and slots change from token
to token, so a graph would need fixed-size waves over padded slot lists; the grouped GEMM
already makes a layer two GEMM launches, and benchmarks/gpu_device.sh measures it against
the loop (`moe_loop`) when a GPU is lent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from inference.moe.storage.store import ExpertLayout, FastTier

_SUPPORT: dict[tuple[str, str], bool] = {}


def grouped_supported(device: str, dtype: torch.dtype) -> bool:
    """Whether `torch._grouped_mm` runs on this device and dtype (probed once, tiny shapes)."""
    import torch

    key = (str(device), str(dtype))
    if key not in _SUPPORT:
        ok = hasattr(torch, "_grouped_mm")
        if ok:
            try:
                a = torch.ones(2, 16, device=device, dtype=dtype)
                # B as the slab gives it: each matrix transposed (column-major)
                b = torch.ones(2, 16, 16, device=device, dtype=dtype).transpose(1, 2)
                offs = torch.tensor([1, 2], device=device, dtype=torch.int32)
                out = torch._grouped_mm(a, b, offs=offs)
                ok = bool(out.shape == (2, 16)) and float(out[1, 0]) == 16.0
            except (RuntimeError, NotImplementedError, TypeError):
                ok = False
        _SUPPORT[key] = ok
    return _SUPPORT[key]


class FusedExperts:
    """Grouped expert GEMMs over one fast tier (see module doc)."""

    def __init__(self, fast: FastTier, hidden: int, expert_dim: int) -> None:
        self.fast = fast
        self.hidden = hidden
        self.expert_dim = expert_dim
        self._plain: tuple[torch.Tensor, torch.Tensor] | None = None
        self._codecs: dict[int, object] = {}

    def _slab(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight views of every slot: gate_up^T [S, H, 2I] and down^T [S, I, H] (no copy)."""
        if self._plain is None:
            import torch

            lay = self.fast.layout
            dtype = getattr(torch, lay.dtype)
            h, i = self.hidden, self.expert_dim
            flat = self.fast.pool.view(dtype)  # [S, blob / itemsize]
            gate_up = flat[:, : 2 * i * h].unflatten(1, (2 * i, h))  # [S, 2I, H]
            down = flat[:, 2 * i * h : 3 * i * h].unflatten(1, (h, i))  # [S, H, I]
            self._plain = (gate_up.transpose(1, 2), down.transpose(1, 2))
        return self._plain

    def _decoded(
        self, slots: list[int], stored: ExpertLayout, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """gate_up^T [n, H, 2I] and down^T [n, I, H] of packed slots, dequantized in one pass."""
        import torch

        codec = self._codecs.get(stored.bits)
        if codec is None:
            codec = self._codecs[stored.bits] = stored.codec()
        index = torch.tensor(slots, device=self.fast.pool.device)
        blobs = self.fast.pool.index_select(0, index)  # [n, blob] packed bytes
        gate_up, down_t = codec.decode_batch(blobs, dtype)  # type: ignore[attr-defined]
        return gate_up.transpose(1, 2), down_t

    def run(
        self,
        x: torch.Tensor,
        slots: list[int],
        counts: list[int],
        stored: ExpertLayout,
    ) -> torch.Tensor:
        """x [n, H]: rows grouped by expert in the order of `slots` (counts[j] rows each);
        returns the SwiGLU expert outputs [n, H] in the same row order."""
        import torch
        import torch.nn.functional as F

        device = x.device
        if stored.bits:
            gate_up_t, down_t = self._decoded(slots, stored, x.dtype)
            offs = torch.tensor(counts, device=device, dtype=torch.int32).cumsum(
                0, dtype=torch.int32
            )
            xs, perm = x, None
        else:
            all_gu, all_down = self._slab()
            # rows must be sorted by slot; only the slot range in use is passed
            order = sorted(range(len(slots)), key=slots.__getitem__)
            lo, hi = slots[order[0]], slots[order[-1]] + 1
            per_slot = [0] * (hi - lo)
            for j in order:
                per_slot[slots[j] - lo] = counts[j]
            offs = torch.tensor(per_slot, dtype=torch.int32).cumsum(0, dtype=torch.int32).to(device)
            gate_up_t, down_t = all_gu[lo:hi], all_down[lo:hi]
            perm = None
            if order != sorted(order):
                starts = [0] * len(slots)
                acc = 0
                for j, c in enumerate(counts):
                    starts[j], acc = acc, acc + c
                rows = [r for j in order for r in range(starts[j], starts[j] + counts[j])]
                perm = torch.tensor(rows, device=device)
            xs = x if perm is None else x.index_select(0, perm)
        gate, up = torch._grouped_mm(xs.contiguous(), gate_up_t, offs=offs).chunk(2, dim=-1)
        out = torch._grouped_mm((F.silu(gate) * up).contiguous(), down_t, offs=offs)  # [n, H]
        if perm is not None:
            out = torch.empty_like(out).index_copy_(0, perm, out)
        return out
