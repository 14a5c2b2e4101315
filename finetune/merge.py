"""Serve the adapter fused into the base: W' = W + B @ A * alpha / r, re-quantized.

A runtime-applied LoRA costs llama.cpp ~23% decode speed on 2 cores (two extra small
matmuls per adapted tensor per token); a merged model decodes exactly like the base. The
GGUF LoRA stays the source of truth (and what rollback restores); the merged file is a
cache built from it. Tensors whose type the gguf package cannot quantize are written as
Q8_0, which decodes a little slower than Q4 on CPU -- the benchmark says which is faster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetune.errors import ExportError
from finetune.gguf_io import copy_metadata, dequantize, field_value, quantize, write_atomic


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


def merge_lora(base_gguf: str | Path, adapter_gguf: str | Path, out_path: str | Path, scale: float = 1.0) -> Path:
    import gguf
    import numpy as np

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
            if t.name in pairs:
                a, b = pairs[t.name]  # (r, in), (out, r)
                w = dequantize(t).reshape(shape)
                w = w + (b @ a) * (alpha / a.shape[0]) * scale
                data, raw = quantize(w.astype(np.float32), t.tensor_type)
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
        raise ExportError(f"Could not write the merged model {out_path} ({exc.strerror or exc}).") from exc
    return out_path
