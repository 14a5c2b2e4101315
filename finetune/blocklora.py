"""Block-constant LoRA: an adapter that merges into a Q4_1/Q5_1 model without losing anything.

Q4_1 and Q5_1 store each run of 32 weights along a row as w = d * q + m (a scale, 4- or 5-bit
codes and an offset). A plain LoRA update B @ A is smaller than half a 4-bit step for most
weights, so re-quantizing W + B @ A rounds it away. If every row of the update is constant
within each 32-weight block, it is a change of the block offsets m only: the merged model is
the base's codes and scales with new offsets, as small and as fast as the base, and answers
like the runtime adapter. That holds when A is constant over each block of input columns
(QA-LoRA, Xu et al. 2023): A = repeat(A_g, 32) with A_g of shape (r, in / 32); the adapter
then reads the sum of each block of 32 input features.

Training keeps A_g as the parameter (a torch parametrization); before saving, the full A is
written back so peft, the GGUF LoRA and llama.cpp see a plain LoRA.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# ggml block types with a per-block offset, and where it sits in a block: (bytes per block, offset
# of m)
OFFSET_BLOCKS: dict[str, tuple[int, int]] = {"Q4_1": (20, 2), "Q5_1": (24, 2)}
BLOCK = 32


def _constant_over_blocks(group: int) -> Any:
    import torch

    class BlockConstant(torch.nn.Module):
        """(r, in / g) -> (r, in): each column repeated g times."""

        def forward(self, a_g: Any) -> Any:
            return a_g.repeat_interleave(group, dim=1)

        def right_inverse(self, a: Any) -> Any:
            return a[:, ::group].contiguous()  # keeps peft's init scale (1 / sqrt(in))

    return BlockConstant()


def lora_a_modules(peft_model: Any) -> list[Any]:
    """The `lora_A` linear layers of every adapted module (peft's default adapter)."""
    out = []
    for module in peft_model.modules():
        lora_a = getattr(module, "lora_A", None)
        if lora_a is not None and "default" in lora_a:
            out.append(lora_a["default"])
    return out


def make_block_constant(peft_model: Any, group: int = BLOCK) -> int:
    """Constrain every lora_A to be constant over blocks of `group` input columns; returns how
    many."""
    from torch.nn.utils import parametrize

    mods = lora_a_modules(peft_model)
    for lin in mods:
        if lin.weight.shape[1] % group:
            raise ValueError(
                f"block LoRA needs input sizes divisible by {group}, not {lin.weight.shape[1]}"
            )
        parametrize.register_parametrization(lin, "weight", _constant_over_blocks(group))
    return len(mods)


def unparametrize(peft_model: Any) -> None:
    """Write the full (r, in) A back as a plain parameter, so peft saves a standard adapter."""
    from torch.nn.utils import parametrize

    for lin in lora_a_modules(peft_model):
        if parametrize.is_parametrized(lin, "weight"):
            parametrize.remove_parametrizations(lin, "weight", leave_parametrized=True)


def block_constant(a: Any, group: int = BLOCK) -> bool:
    """Is A (r, in) constant over each block of `group` columns (exactly, as training makes it)?"""
    import numpy as np

    r, n = a.shape
    if n % group:
        return False
    blocks = a.reshape(r, n // group, group)
    return bool(np.array_equal(blocks, np.broadcast_to(blocks[:, :, :1], blocks.shape)))


def base_supports_blocks(base_gguf: str) -> bool:
    """True when every 2-D layer weight of the GGUF is Q4_1 or Q5_1 (offsets to merge into)."""
    if not str(base_gguf).endswith(".gguf") or not Path(base_gguf).is_file():
        return False
    import gguf

    types = {
        t.tensor_type.name
        for t in gguf.GGUFReader(str(base_gguf)).tensors
        if t.name.startswith("blk.") and len(t.shape) == 2
    }
    return bool(types) and types <= set(OFFSET_BLOCKS)


def merge_offsets(raw: Any, type_name: str, a: Any, b: Any, factor: float) -> Any:
    """Base blocks `raw` (out, bytes) with m += (B @ A_g) * factor; codes and scales untouched."""
    import numpy as np

    size, at = OFFSET_BLOCKS[type_name]
    out_rows = b.shape[0]
    blocks = np.array(raw, dtype=np.uint8, copy=True).reshape(
        out_rows, -1, size
    )  # (out, nb, bytes)
    delta = (b.astype(np.float64) @ a[:, ::BLOCK].astype(np.float64)) * factor  # (out, nb)
    if delta.shape != blocks.shape[:2]:
        raise ValueError(
            f"adapter shape {delta.shape} does not match the base's blocks {blocks.shape[:2]}"
        )
    m = np.ascontiguousarray(blocks[:, :, at : at + 2]).view(np.float16)[..., 0]  # (out, nb)
    new_m = (m.astype(np.float64) + delta).astype(np.float16)
    blocks[:, :, at : at + 2] = new_m[..., None].view(np.uint8)
    return blocks.reshape(out_rows, -1)
