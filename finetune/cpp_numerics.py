"""The torch reference computed with llama.cpp's rounding of activations, for the export check.

llama.cpp multiplies a quantized weight with activations it first rounds to 8 bits per block
(Q8_0/Q8_1 blocks of 32 for the legacy types, Q8_K blocks of 256 for k-quants), and it keeps
the attention cache in f16. Torch multiplies the dequantized weights with float32
activations. Near-ties in greedy decoding flip on that difference alone: on SmolLM2 Q4_1
the base model without any adapter agrees with itself across the two runtimes on only 57% of
32-token answers. Rounding torch's base-layer inputs the way llama.cpp does removes that
floor, so the agreement measures the export (names, q/k permutation, scaling), not the
runtime's arithmetic. The LoRA path is not rounded: llama.cpp applies an f32 adapter in f32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# weight type -> activation block size llama.cpp rounds to 8 bits (vec_dot_type)
_ACT_BLOCK = {"Q4_0": 32, "Q4_1": 32, "Q5_0": 32, "Q5_1": 32, "Q8_0": 32, "Q2_K": 256, "Q3_K": 256,
              "Q4_K": 256, "Q5_K": 256, "Q6_K": 256}


def round_like_q8(x: Any, block: int) -> Any:
    """x rounded to 8-bit blocks along the last dim: d = max|x| / 127, x -> round(x / d) * d."""
    import torch

    shape = x.shape
    if shape[-1] % block:
        return x
    xb = x.reshape(*shape[:-1], shape[-1] // block, block)
    d = xb.abs().amax(-1, keepdim=True) / 127.0
    q = torch.where(d > 0, torch.round(xb / torch.where(d > 0, d, torch.ones_like(d))), torch.zeros_like(xb))
    return (q * d).reshape(shape)


def gguf_types(model_gguf: str | Path) -> dict[str, str]:
    import gguf

    return {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(model_gguf)).tensors}


def _hf_to_gguf(model: Any, arch_name: str, n_layers: int) -> dict[str, str]:
    """HF module name (as in the plain model) -> GGUF tensor name."""
    import gguf

    arch = next(a for a, name in gguf.MODEL_ARCH_NAMES.items() if name == arch_name)
    name_map = gguf.get_tensor_name_map(arch, n_layers)
    out = {}
    for name, _ in model.named_modules():
        plain = name.replace("base_model.model.", "").replace(".base_layer", "")
        g = name_map.get_name(plain + ".weight", try_suffixes=(".weight",))
        if g:
            out[name] = g
    return out


@contextlib.contextmanager
def llamacpp_rounding(model: Any, model_gguf: str | Path, arch_name: str, n_layers: int,
                      kv_f16: bool = True) -> Iterator[int]:
    """Round the inputs of every base linear layer (and the output head) as llama.cpp does for
    that tensor's type in `model_gguf`, and the attention keys/values to f16; yields how many
    layers are hooked. peft's lora_A/lora_B stay exact."""
    import torch

    types = gguf_types(model_gguf)
    names = _hf_to_gguf(model, arch_name, n_layers)
    tied = "output.weight" not in types
    handles = []

    def pre(block: int) -> Any:
        return lambda _m, args: (round_like_q8(args[0], block), *args[1:])

    def to_f16(_m: Any, _args: Any, out: Any) -> Any:
        return out.to(torch.float16).to(out.dtype)

    for name, module in model.named_modules():
        if ".lora_" in name:
            continue
        g = names.get(name) or ("token_embd.weight" if tied and name.endswith("lm_head") else None)
        block = _ACT_BLOCK.get(types.get(g or "", ""), 0)
        if block and isinstance(module, torch.nn.Linear):  # the base weight's own matmul
            handles.append(module.register_forward_pre_hook(pre(block)))
        if kv_f16 and g and g.endswith(("attn_k.weight", "attn_v.weight")) and ".base_layer" not in name:
            handles.append(module.register_forward_hook(to_f16))  # llama.cpp's KV cache is f16
    try:
        yield len(handles)
    finally:
        for h in handles:
            h.remove()
