"""The personal LoRA adapter (a GGUF LoRA as finetune exports it) applied in the MoE engine.

What is adapted: the attention projections (q, k, v, o) of every layer and the MLP of the
dense (non-MoE) layers, merged into the engine's non-expert weights once at load,
W' = W + scale * alpha / r * B @ A, computed in float32 and rounded once to the serving dtype.
Merging costs nothing per token, keeps the fused expert path and CUDA graphs as they are,
and writes nothing to disk: the adapter is read from the file the Runtime hands over (an
in-memory copy when the vault seals it) and lives only in the loaded weights.

Not adapted: routed experts. An adapter trained on a dense base has gate/up/down LoRA for a
dense FFN that a MoE layer no longer has; those tensors are counted as skipped and named in
`AdapterReport.describe()`, the same modules peft leaves alone when it loads that adapter
onto the MoE checkpoint. Tensors that do not fit the model's shapes are an error: the
adapter was trained on another model.

llama.cpp's converter permutes the q/k rows of llama-architecture models and finetune's
export permutes lora_b the same way, so for those adapters lora_b of q/k is permuted back to
the Hugging Face order the engine's weights are in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.moe.config import MoEConfig
from inference.moe.errors import AdapterError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from inference.moe.weights import DenseWeights

# GGUF architectures whose q/k rows llama.cpp's converter permutes (finetune/export.py)
PERMUTED_ARCHS = ("llama",)
ATTENTION = {"attn_q": "q", "attn_k": "k", "attn_v": "v", "attn_output": "o"}
MLP = ("ffn_gate", "ffn_up", "ffn_down")
_NAME = re.compile(r"^blk\.(?P<layer>\d+)\.(?P<module>[a-z_]+)\.weight\.lora_(?P<ab>[ab])$")


@dataclass
class AdapterReport:
    """What an adapter changed in a loaded model (for describe() and tests)."""

    path: str
    scale: float  # lora_scale * alpha / r (r of the first tensor; each uses its own)
    attention: int = 0  # adapted attention projections
    dense_mlp: int = 0  # adapted projections of dense MLP layers
    skipped_experts: int = 0  # MLP LoRA tensors of MoE layers (experts are not adapted)
    skipped_other: list[str] = field(default_factory=list)  # names the engine has no weight for

    def describe(self) -> str:
        parts = [f"{self.attention} attention", f"{self.dense_mlp} dense MLP"]
        text = f"{', '.join(parts)} projections adapted"
        if self.skipped_experts:
            text += f"; {self.skipped_experts} MLP projections of MoE layers not applied"
        if self.skipped_other:
            text += f"; {len(self.skipped_other)} other tensors not applied"
        return text


def read_gguf_lora(path: Path) -> tuple[dict[str, np.ndarray], float, str]:
    """(tensor name -> float32 array in numpy order, alpha, GGUF architecture) of a GGUF LoRA."""
    import gguf
    import numpy as np

    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # the gguf package raises plain ValueErrors and more
        raise AdapterError(f"The adapter {path} is not a readable GGUF file ({exc}).") from exc

    def value(key: str) -> Any:
        f = reader.fields.get(key)
        return None if f is None else f.contents()

    if value("general.type") != "adapter" or value("adapter.type") != "lora":
        raise AdapterError(f"The file {path} is not a GGUF LoRA adapter.")
    alpha = value("adapter.lora.alpha")
    arch = str(value("general.architecture") or "")
    tensors: dict[str, np.ndarray] = {}
    for t in reader.tensors:
        shape = [int(x) for x in reversed(t.shape)]
        if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            arr = np.array(t.data, dtype=np.float32)  # a copy: the reader's view is read-only
        else:
            arr = np.array(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        tensors[t.name] = arr.reshape(shape)
    if not tensors:
        raise AdapterError(f"The adapter {path} holds no LoRA tensors.")
    return tensors, float(alpha) if alpha is not None else 0.0, arch


def unpermute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of llama.cpp's convert_hf_to_gguf `permute` on the rows of an (out, in) matrix."""
    return (
        w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def apply_lora(
    dense: DenseWeights, cfg: MoEConfig, path: Path, lora_scale: float = 1.0
) -> AdapterReport:
    """Merge the GGUF LoRA at `path` into `dense` (in place: new tensors in its layers)."""
    import torch

    path = Path(path)
    tensors, alpha, arch = read_gguf_lora(path)
    pairs: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    report = AdapterReport(str(path), 0.0)
    for name, arr in tensors.items():
        m = _NAME.match(name)
        if m is None:
            report.skipped_other.append(name)
            continue
        pairs.setdefault((int(m.group("layer")), m.group("module")), {})[m.group("ab")] = arr
    moe = set(cfg.moe_layers)
    rank = 0
    todo: list[tuple[int, str, np.ndarray, np.ndarray]] = []
    for (layer, module), ab in sorted(pairs.items()):
        if set(ab) != {"a", "b"}:
            raise AdapterError(
                f"The adapter {path.name} has lora_a or lora_b of "
                f"blk.{layer}.{module} without the other."
            )
        a, b = ab["a"], ab["b"]  # [r, in], [out, r]
        rank = rank or int(a.shape[0])
        if a.shape[0] == 0:
            raise AdapterError(f"The adapter {path.name} has rank 0 for blk.{layer}.{module}.")
        if a.shape[0] != b.shape[1]:
            raise AdapterError(
                f"The adapter {path.name} has ranks {a.shape[0]} and "
                f"{b.shape[1]} for blk.{layer}.{module}."
            )
        if layer >= cfg.num_layers:
            raise AdapterError(
                f"The adapter {path.name} adapts layer {layer} but the MoE model "
                f"{cfg.name} has {cfg.num_layers} layers; it was trained on "
                "another model."
            )
        if module in MLP and layer in moe:
            report.skipped_experts += 1
        elif module not in ATTENTION and module not in MLP:
            report.skipped_other.append(f"blk.{layer}.{module}")
        else:
            if arch in PERMUTED_ARCHS and module in ("attn_q", "attn_k"):
                heads = cfg.num_heads if module == "attn_q" else cfg.num_kv_heads
                if b.shape[0] != heads * cfg.head_dim:
                    _mismatch(
                        path,
                        layer,
                        module,
                        (heads * cfg.head_dim, a.shape[1]),
                        (b.shape[0], a.shape[1]),
                        cfg,
                    )
                b = unpermute_rows(b, heads)
            todo.append((layer, module, a, b))
    report.scale = lora_scale * (alpha / rank if alpha > 0 else 1.0)
    for layer, module, a, b in todo:
        lw = dense.layers[layer]
        # per tensor, as llama.cpp scales: alpha / its own rank (no alpha in the file: 1)
        scale = lora_scale * (alpha / a.shape[0] if alpha > 0 else 1.0)
        delta = torch.from_numpy(b) @ torch.from_numpy(a) * scale  # [out, in] float32
        if module in ATTENTION:
            attr = ATTENTION[module]
            setattr(lw, attr, _merged(getattr(lw, attr), delta, path, layer, module, cfg))
            report.attention += 1
            continue
        n = cfg.dense_dim
        if module == "ffn_down":
            lw.dense_down = _merged(lw.dense_down, delta, path, layer, module, cfg)
        else:  # gate and up are the two halves of dense_gate_up [2n, H]
            width = int(lw.dense_gate_up.shape[1])
            if tuple(delta.shape) != (n, width):
                _mismatch(path, layer, module, (n, width), tuple(delta.shape), cfg)
            full = torch.zeros((2 * n, width), dtype=torch.float32)
            full[:n] = delta if module == "ffn_gate" else 0.0
            full[n:] = delta if module == "ffn_up" else 0.0
            lw.dense_gate_up = _merged(lw.dense_gate_up, full, path, layer, module, cfg)
        report.dense_mlp += 1
    return report


def _merged(
    w: torch.Tensor, delta: torch.Tensor, path: Path, layer: int, module: str, cfg: MoEConfig
) -> torch.Tensor:
    if tuple(w.shape) != tuple(delta.shape):
        _mismatch(path, layer, module, tuple(w.shape), tuple(delta.shape), cfg)
    return (w.float() + delta.to(w.device)).to(w.dtype)


def _mismatch(
    path: Path, layer: int, module: str, want: tuple[int, ...], got: tuple[int, ...], cfg: MoEConfig
) -> None:
    raise AdapterError(
        f"The adapter {path.name} does not fit the MoE model {cfg.name}: blk.{layer}.{module} is "
        f"{list(got)} in the adapter and {list(want)} in the model; it was trained on another "
        "model (train one on this model's dense base, or deactivate it)."
    )
