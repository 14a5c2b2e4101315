"""The MoE model description and the family registry (Mixtral, OLMoE, Qwen2-MoE).

`load_config(folder)` reads a Hugging Face `config.json` through transformers' config
classes (so defaults match the reference) and turns it into a plain `MoEConfig`.
`FamilySpec` names the per-expert tensors as they are stored on disk (one tensor per
expert); transformers 5.x fuses them only in memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.moe.errors import CheckpointError, UnsupportedModel


@dataclass(frozen=True)
class FamilySpec:
    """Where one family keeps its MoE tensors (templates take {l} layer and {e} expert)."""

    model_type: str
    mlp_prefix: str  # "model.layers.{l}.mlp" or "...block_sparse_moe"
    expert_names: tuple[str, str, str]  # gate, up, down (relative to `{mlp}.experts.{e}.`)
    qk_norm: bool = False
    shared_expert: bool = False

    def router_key(self, layer: int) -> str:
        return f"{self.mlp_prefix.format(l=layer)}.gate.weight"

    def expert_keys(self, layer: int, expert: int) -> tuple[str, str, str]:
        base = f"{self.mlp_prefix.format(l=layer)}.experts.{expert}"
        return tuple(f"{base}.{n}.weight" for n in self.expert_names)  # type: ignore[return-value]

    def fused_keys(self, layer: int) -> tuple[str, str]:
        """transformers 5.x in-memory layout, also accepted on disk: [E,2I,H] and [E,H,I]."""
        base = f"{self.mlp_prefix.format(l=layer)}.experts"
        return f"{base}.gate_up_proj", f"{base}.down_proj"


FAMILIES: dict[str, FamilySpec] = {
    "mixtral": FamilySpec("mixtral", "model.layers.{l}.block_sparse_moe", ("w1", "w3", "w2")),
    "olmoe": FamilySpec(
        "olmoe", "model.layers.{l}.mlp", ("gate_proj", "up_proj", "down_proj"), qk_norm=True
    ),
    "qwen2_moe": FamilySpec(
        "qwen2_moe",
        "model.layers.{l}.mlp",
        ("gate_proj", "up_proj", "down_proj"),
        shared_expert=True,
    ),
}


@dataclass(frozen=True)
class MoEConfig:
    """Everything the engine's own forward needs; plain data, no transformers objects."""

    family: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    num_experts: int
    top_k: int
    expert_dim: int  # intermediate size of one routed expert
    norm_topk_prob: bool
    rms_eps: float
    tie_word_embeddings: bool = False
    attn_bias: bool = False  # q/k/v/o biases (OLMoE attention_bias)
    qkv_bias: bool = False  # q/k/v biases only (Qwen2-MoE)
    clip_qkv: float | None = None
    sliding_window: int | None = None
    moe_layers: tuple[int, ...] = ()  # layers with routed experts; others use a dense MLP
    dense_dim: int = 0  # intermediate size of dense MLP layers (Qwen2-MoE mlp_only_layers)
    shared_expert_dim: int = 0
    rope_theta: float = 10000.0
    rope_type: str = "default"
    max_position: int = 4096
    eos_token_ids: tuple[int, ...] = ()
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def spec(self) -> FamilySpec:
        return FAMILIES[self.family]

    @property
    def expert_numel(self) -> int:
        """gate [I,H] + up [I,H] + down [H,I] in one contiguous blob."""
        return 3 * self.expert_dim * self.hidden_size

    @property
    def num_moe_layers(self) -> int:
        return len(self.moe_layers)

    def summary(self, expert_bytes: int) -> dict[str, Any]:
        return {
            "name": self.name or self.family,
            "layers": self.num_layers,
            "experts": self.num_experts,
            "top_k": self.top_k,
            "expert_bytes": expert_bytes,
        }


def load_hf_config(folder: Path) -> Any:
    """The transformers config object of a checkpoint folder (clear errors, no download)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a model folder: it has no config.json.")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}).") from exc
    model_type = raw.get("model_type") if isinstance(raw, dict) else None
    if model_type not in FAMILIES:
        raise UnsupportedModel(
            f"The model in {folder} has architecture {model_type!r}; the MoE engine supports "
            f"{', '.join(sorted(FAMILIES))}."
        )
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # transformers raises many types for bad configs
        raise CheckpointError(
            f"{path} could not be read as a {model_type} config ({exc})."
        ) from exc


def from_hf_config(hf: Any, name: str = "") -> MoEConfig:
    """Translate a transformers config of a supported family into `MoEConfig`."""
    family = hf.model_type
    if family not in FAMILIES:
        raise UnsupportedModel(
            f"Architecture {family!r} is not supported; "
            f"choose one of {', '.join(sorted(FAMILIES))}."
        )
    act = getattr(hf, "hidden_act", "silu")
    if act != "silu":
        raise UnsupportedModel(
            f"Activation {act!r} is not supported; the MoE engine runs SiLU-gated experts."
        )
    heads = hf.num_attention_heads
    head_dim = getattr(hf, "head_dim", None) or hf.hidden_size // heads
    rope = dict(getattr(hf, "rope_parameters", None) or {})
    theta = float(rope.get("rope_theta", getattr(hf, "rope_theta", 10000.0)))
    n_layers = hf.num_hidden_layers
    if family == "mixtral":
        experts, expert_dim = hf.num_local_experts, hf.intermediate_size
        moe_layers = tuple(range(n_layers))
        norm_topk, dense_dim, shared = True, 0, 0
    elif family == "olmoe":
        experts, expert_dim = hf.num_experts, hf.intermediate_size
        moe_layers = tuple(range(n_layers))
        norm_topk, dense_dim, shared = bool(hf.norm_topk_prob), 0, 0
    else:  # qwen2_moe
        experts, expert_dim = hf.num_experts, hf.moe_intermediate_size
        only = set(hf.mlp_only_layers or [])
        step = hf.decoder_sparse_step
        moe_layers = tuple(
            i for i in range(n_layers) if i not in only and experts > 0 and (i + 1) % step == 0
        )
        norm_topk, dense_dim, shared = (
            bool(hf.norm_topk_prob),
            hf.intermediate_size,
            hf.shared_expert_intermediate_size,
        )
    window = getattr(hf, "sliding_window", None) if family == "mixtral" else None
    if family == "qwen2_moe" and getattr(hf, "use_sliding_window", False):
        raise UnsupportedModel(
            "Qwen2-MoE checkpoints with use_sliding_window=true are not supported yet."
        )
    eos = getattr(hf, "eos_token_id", None)
    eos_ids = tuple(eos) if isinstance(eos, (list, tuple)) else ((eos,) if eos is not None else ())
    return MoEConfig(
        family=family,
        vocab_size=hf.vocab_size,
        hidden_size=hf.hidden_size,
        num_layers=n_layers,
        num_heads=heads,
        num_kv_heads=getattr(hf, "num_key_value_heads", None) or heads,
        head_dim=head_dim,
        num_experts=experts,
        top_k=hf.num_experts_per_tok,
        expert_dim=expert_dim,
        norm_topk_prob=norm_topk,
        rms_eps=float(hf.rms_norm_eps),
        tie_word_embeddings=bool(getattr(hf, "tie_word_embeddings", False)),
        attn_bias=bool(getattr(hf, "attention_bias", False)) if family == "olmoe" else False,
        qkv_bias=bool(getattr(hf, "qkv_bias", True)) if family == "qwen2_moe" else False,
        clip_qkv=getattr(hf, "clip_qkv", None) if family == "olmoe" else None,
        sliding_window=window,
        moe_layers=moe_layers,
        dense_dim=dense_dim,
        shared_expert_dim=shared,
        rope_theta=theta,
        rope_type=str(rope.get("rope_type", "default")),
        max_position=int(getattr(hf, "max_position_embeddings", 4096)),
        eos_token_ids=eos_ids,
        name=name,
    )


def rope_inv_freq(hf: Any, cfg: MoEConfig) -> tuple[Any, float]:
    """(inv_freq [head_dim/2], attention_scaling); non-default RoPE types use transformers' init."""
    import torch

    if cfg.rope_type == "default":
        dim = cfg.head_dim
        inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
        return inv, 1.0
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    fn = ROPE_INIT_FUNCTIONS.get(cfg.rope_type)
    if fn is None:
        raise UnsupportedModel(f"RoPE type {cfg.rope_type!r} is not supported.")
    inv, scaling = fn(hf, "cpu")
    return inv, float(scaling)
