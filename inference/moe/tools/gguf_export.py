"""A testbed as a GGUF file llama.cpp runs (OLMoE architecture), the same weights bit for bit.

So llama.cpp can be measured on exactly what the engine computes: bf16 tensors, experts
stacked per layer as llama.cpp wants them (`blk.N.ffn_{gate,up,down}_exps`, numpy shapes
[E, I, H] and [E, H, I]), read straight from the engine's expert file one layer at a time
(the writer streams tensor by tensor; nothing close to the 8 GB is held in memory). The
vocabulary is a placeholder SentencePiece list of the testbed's size: the benchmark feeds
token ids, never text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def _bf16(t: Any) -> np.ndarray:
    """A bf16 torch tensor as its raw uint16 numpy array (no numeric conversion)."""
    import torch

    return t.contiguous().view(torch.int16).numpy().view("uint16")


def _widen(raw: np.ndarray) -> np.ndarray:
    """uint16 bf16 bits -> float32 (exact)."""
    import numpy as np

    return (raw.astype(np.uint32) << 16).view(np.float32)


def write_testbed_gguf(folder: Path, out: Path | None = None) -> Path:
    """Write `folder`'s testbed (testbed.ensure_testbed) as an OLMoE GGUF; reused if present."""
    import gguf
    import torch
    from safetensors.torch import load_file

    from inference.moe.storage.store import DiskSlowTier, aligned_empty

    folder = Path(folder)
    meta = json.loads((folder / "testbed.json").read_text())
    s = meta["shape"]
    out = Path(out) if out else folder / f"{meta['name']}-bf16.gguf"
    if out.is_file():
        return out
    if s["dtype"] != "bfloat16":
        raise ValueError("only bf16 testbeds are exported")
    h, i, e, n_layers = s["hidden"], s["expert_dim"], s["experts"], s["layers"]
    dense = load_file(str(folder / "dense.safetensors"))
    slow = DiskSlowTier(folder / "experts.bin", direct=False)
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    w = gguf.GGUFWriter(str(tmp), arch="olmoe")
    w.add_name(meta["name"])
    w.add_context_length(4096)
    w.add_embedding_length(h)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(i)
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_expert_count(e)
    w.add_expert_used_count(s["top_k"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    w.add_tokenizer_model("llama")
    vocab = s["vocab"]
    w.add_token_list(["<unk>", "<s>", "</s>"] + [f"<t{n}>" for n in range(3, vocab)])
    w.add_token_scores([0.0] * vocab)
    w.add_token_types([2, 3, 3] + [1] * (vocab - 3))
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)

    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    per_layer = {
        "input_layernorm.weight": "attn_norm",
        "post_attention_layernorm.weight": "ffn_norm",
        "self_attn.q_proj.weight": "attn_q",
        "self_attn.k_proj.weight": "attn_k",
        "self_attn.v_proj.weight": "attn_v",
        "self_attn.o_proj.weight": "attn_output",
        "self_attn.q_norm.weight": "attn_q_norm",
        "self_attn.k_norm.weight": "attn_k_norm",
        "mlp.gate.weight": "ffn_gate_inp",
    }
    plan: list[tuple[str, tuple[int, ...], Any]] = []  # (name, numpy shape, data producer)
    for src, dst in names.items():
        plan.append((dst, tuple(dense[src].shape), lambda src=src: _bf16(dense[src])))
    blob = aligned_empty(slow.layout.blob_bytes)

    def experts(layer: int, part: int) -> np.ndarray:
        import numpy as np

        shape = (e, i, h) if part < 2 else (e, h, i)
        arr = np.empty(shape, dtype=np.uint16)
        for x in range(e):
            slow.read_into(layer * e + x, blob)
            flat = blob[: slow.layout.nbytes].view(torch.bfloat16)
            arr[x] = _bf16(flat[part * i * h : (part + 1) * i * h]).reshape(shape[1:])
        return arr

    for layer in range(n_layers):
        for src, dst in per_layer.items():
            key = f"model.layers.{layer}.{src}"
            plan.append(
                (
                    f"blk.{layer}.{dst}.weight",
                    tuple(dense[key].shape),
                    lambda key=key: _bf16(dense[key]),
                )
            )
        for part, dst in enumerate(("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps")):
            shape: tuple[int, ...] = (e, i, h) if part < 2 else (e, h, i)
            plan.append(
                (
                    f"blk.{layer}.{dst}.weight",
                    shape,
                    lambda layer=layer, part=part: experts(layer, part),
                )
            )
    import numpy as np

    # 1-D tensors (the norms) as F32, as llama.cpp's own converter writes them: its CPU
    # element-wise ops take no bf16 operand; the values are the same (bf16 widens exactly)
    for n, (name, shape, make) in enumerate(plan):
        if len(shape) == 1:
            plan[n] = (name, shape, lambda make=make: _widen(make()))
    for name, shape, _ in plan:
        f32 = len(shape) == 1
        w.add_tensor_info(
            name,
            shape,
            np.dtype(np.float32 if f32 else np.uint16),
            int(np.prod(shape)) * (4 if f32 else 2),
            raw_dtype=gguf.GGMLQuantizationType.F32 if f32 else gguf.GGMLQuantizationType.BF16,
        )
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        for _, _, make in plan:
            w.write_tensor_data(make())
        w.close()
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        slow.close()
    return out
