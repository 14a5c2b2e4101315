"""The adapter fused into the base: W' = W + B @ A * alpha / r, re-quantized.

A runtime-applied LoRA costs llama.cpp decode speed (two extra small matmuls per adapted
tensor per token); a merged model has none. But the update must survive re-quantization:
adapted 4-bit tensors are written as Q8_0 by default (see `merge_lora`), the rest is copied.
An adapter trained block-constant (finetune/blocklora.py) on a Q4_1/Q5_1 base needs no
re-quantization at all: it merges into the block offsets, exactly, at the base's size.
The GGUF LoRA stays the source of truth (and what rollback restores); the merged file is a
cache built from it. benchmarks/finetune.py measures speed and agreement of both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetune.blocklora import OFFSET_BLOCKS, block_constant, merge_offsets
from finetune.errors import ExportError
from finetune.gguf_io import copy_metadata, dequantize, field_value, quantize, write_atomic

# merge type -> gguf.GGMLQuantizationType member of adapted tensors; "same" keeps each tensor's
# base type, "auto" keeps float and 8-bit types and writes coarser (4/5/6-bit) ones as Q8_0
MERGE_TYPES: dict[str, str] = {"q8_0": "Q8_0", "f16": "F16", "f32": "F32"}
_KEEP_IN_AUTO = ("F32", "F16", "BF16", "Q8_0")


def _target_type(base_type: Any, qtype: str) -> Any:
    import gguf

    T = gguf.GGMLQuantizationType
    if qtype == "same" or (qtype == "auto" and base_type.name in _KEEP_IN_AUTO):
        return base_type
    return T[MERGE_TYPES.get(qtype, "Q8_0")]


def exact_offsets(tensor: Any, a: Any, qtype: str) -> bool:
    """A block LoRA on a Q4_1/Q5_1 tensor merges into its block offsets, losslessly and at the
    base's size (finetune/blocklora.py); `auto` and `same` take that path when they can."""
    return (
        qtype in ("auto", "same") and tensor.tensor_type.name in OFFSET_BLOCKS and block_constant(a)
    )


def read_lora(adapter_gguf: Path) -> tuple[dict[str, tuple[Any, Any]], float]:
    """{base tensor name: (lora_a (r, in), lora_b (out, r))}, alpha."""
    import numpy as np
    from gguf import GGUFReader

    reader = GGUFReader(str(adapter_gguf))
    alpha = float(field_value(reader, "adapter.lora.alpha") or 0.0)
    parts: dict[str, dict[str, Any]] = {}
    for t in reader.tensors:
        base, _, ab = t.name.rpartition(".lora_")
        arr = np.asarray(t.data, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)])
        parts.setdefault(base, {})[ab] = arr
    pairs = {k: (v["a"], v["b"]) for k, v in parts.items() if "a" in v and "b" in v}
    return pairs, alpha


def merge_tensor(w: Any, a: Any, b: Any, alpha: float, scale: float, qtype: Any) -> tuple[Any, Any]:
    """(data, raw_dtype) of W + B @ A * alpha / r * scale at `qtype`; w (out, in), a (r, in), b
    (out, r)."""
    import numpy as np

    merged = w + (b @ a) * (alpha / a.shape[0]) * scale  # (out, in)
    return quantize(merged.astype(np.float32), qtype)


def merge_lora(
    base_gguf: str | Path,
    adapter_gguf: str | Path,
    out_path: str | Path,
    scale: float = 1.0,
    qtype: str = "auto",
) -> Path:
    """Write base + adapter as one GGUF; adapted tensors at `qtype` (see MERGE_TYPES).

    Re-quantizing W + B @ A back to a 4-bit type loses most of the update: it is smaller than
    half a 4-bit step for most weights, so they round back to the base value (measured on
    SmolLM2 Q4_1: cosine 0.08 between the merged-minus-base and the true update, and the
    persona QA of the merged model fell to the base's; Q8_0 keeps the adapter's accuracy).
    """
    import gguf

    if qtype not in ("same", "auto", *MERGE_TYPES):
        raise ExportError(
            f"Unknown merge type {qtype!r}; use one of auto, same, {', '.join(MERGE_TYPES)}."
        )

    base_gguf, out_path = Path(base_gguf), Path(out_path)
    pairs, alpha = read_lora(Path(adapter_gguf))
    if not pairs:
        raise ExportError(f"{adapter_gguf} holds no LoRA tensors to merge.")
    reader = gguf.GGUFReader(str(base_gguf))
    arch = field_value(reader, "general.architecture")

    def write(tmp: Path) -> None:
        writer = gguf.GGUFWriter(str(tmp), arch)
        copy_metadata(reader, writer)
        for t in reader.tensors:
            shape = [int(x) for x in reversed(t.shape)]
            if t.name in pairs and exact_offsets(t, pairs[t.name][0], qtype):
                a, b = pairs[t.name]  # block-constant A: only the block offsets change, exactly
                data = merge_offsets(t.data, t.tensor_type.name, a, b, alpha / a.shape[0] * scale)
                writer.add_tensor(t.name, data, raw_dtype=t.tensor_type)
            elif t.name in pairs:
                a, b = pairs[t.name]  # (r, in), (out, r)
                w = dequantize(t).reshape(shape)
                data, raw = merge_tensor(w, a, b, alpha, scale, _target_type(t.tensor_type, qtype))
                writer.add_tensor(t.name, data, raw_dtype=raw)
            else:
                writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

    try:
        write_atomic(write, out_path)
    except OSError as exc:
        raise ExportError(
            f"Could not write the merged model {out_path} ({exc.strerror or exc})."
        ) from exc
    return out_path
