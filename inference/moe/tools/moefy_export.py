"""Writing a MoEfied model as a standard `MixtralForCausalLM` checkpoint.

Mixtral weights each selected expert by a softmax over the top-k router logits. The MoEfied
experts are meant to be summed unweighted, so the exported router is the raw router times a
tiny temperature (softmax over top-k ~ 1/k for every expert, same top-k order) and each
expert's down projection is multiplied by k. The checkpoint is then tied to its k. The raw
routers (whose logits predict each expert's contribution norm) are kept alongside in
`routers_raw.safetensors` for predictors that use router confidence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from inference.moe.tools.moefy_fit import LayerFit

ROUTER_TEMPERATURE = 1e-4  # exported logits = raw * this: top-k weights within ~1e-3 of 1/k
ROUTERS_RAW = "routers_raw.safetensors"
MOEFY_META = "moefy.json"


def mixtral_config(dense_config: Any, n_layers: int, n_experts: int, top_k: int) -> Any:
    """A MixtralConfig with the dense Llama model's attention/embedding shapes."""
    from transformers import MixtralConfig

    rope = getattr(dense_config, "rope_parameters", None) or {}
    theta = float(rope.get("rope_theta", getattr(dense_config, "rope_theta", 10000.0)))
    return MixtralConfig(
        vocab_size=dense_config.vocab_size,
        hidden_size=dense_config.hidden_size,
        intermediate_size=dense_config.intermediate_size // n_experts,
        num_hidden_layers=n_layers,
        num_attention_heads=dense_config.num_attention_heads,
        num_key_value_heads=dense_config.num_key_value_heads,
        head_dim=dense_config.hidden_size // dense_config.num_attention_heads,
        hidden_act="silu",
        max_position_embeddings=dense_config.max_position_embeddings,
        rms_norm_eps=dense_config.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": theta},
        tie_word_embeddings=bool(dense_config.tie_word_embeddings),
        num_local_experts=n_experts,
        num_experts_per_tok=top_k,
        sliding_window=None,
        router_jitter_noise=0.0,
        bos_token_id=dense_config.bos_token_id,
        eos_token_id=dense_config.eos_token_id,
        pad_token_id=dense_config.pad_token_id,
        dtype="float32",
    )


def mixtral_state_dict(dense: Any, fits: list[LayerFit], top_k: int) -> dict[str, torch.Tensor]:
    """Tensors of the Mixtral checkpoint, one tensor per expert as on-disk checkpoints keep them."""
    import torch

    with torch.no_grad():
        return _state_dict(dense, fits, top_k)


def _state_dict(dense: Any, fits: list[LayerFit], top_k: int) -> dict[str, torch.Tensor]:
    sd: dict[str, torch.Tensor] = {
        "model.embed_tokens.weight": dense.model.embed_tokens.weight,
        "model.norm.weight": dense.model.norm.weight,
    }
    if not dense.config.tie_word_embeddings:
        sd["lm_head.weight"] = dense.lm_head.weight
    for i, fit in enumerate(fits):
        layer = dense.model.layers[i]
        pre = f"model.layers.{i}"
        sd[f"{pre}.input_layernorm.weight"] = layer.input_layernorm.weight
        sd[f"{pre}.post_attention_layernorm.weight"] = layer.post_attention_layernorm.weight
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            sd[f"{pre}.self_attn.{name}.weight"] = getattr(layer.self_attn, name).weight
        moe = f"{pre}.block_sparse_moe"
        sd[f"{moe}.gate.weight"] = fit.router * ROUTER_TEMPERATURE  # [E, H]
        gate_w, up_w = layer.mlp.gate_proj.weight, layer.mlp.up_proj.weight  # [I, H]
        for e, idx in enumerate(fit.groups):
            sd[f"{moe}.experts.{e}.w1.weight"] = gate_w[idx]  # [I/E, H]
            sd[f"{moe}.experts.{e}.w3.weight"] = up_w[idx]  # [I/E, H]
            sd[f"{moe}.experts.{e}.w2.weight"] = fit.down[:, idx] * top_k  # [H, I/E]
    return {k: v.detach().float().contiguous().clone() for k, v in sd.items()}


def write_checkpoint(
    folder: Path, dense: Any, tokenizer: Any, fits: list[LayerFit], top_k: int, meta: dict[str, Any]
) -> None:
    """Write config.json, model.safetensors, tokenizer files, raw routers and moefy.json."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = mixtral_config(dense.config, len(fits), int(fits[0].groups.shape[0]), top_k)
    config.architectures = ["MixtralForCausalLM"]
    config.save_pretrained(folder)
    save_file(
        mixtral_state_dict(dense, fits, top_k),
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )
    raw = {f"layers.{i}.router": f.router.contiguous() for i, f in enumerate(fits)}
    raw.update({f"layers.{i}.groups": f.groups.contiguous() for i, f in enumerate(fits)})
    save_file(raw, str(folder / ROUTERS_RAW), metadata={"temperature": str(ROUTER_TEMPERATURE)})
    tokenizer.save_pretrained(folder)
    (folder / MOEFY_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")


def load_raw_routers(folder: Path) -> list[torch.Tensor] | None:
    """The unscaled routers [E, H] per layer of a MoEfied checkpoint, or None for other models."""
    path = Path(folder) / ROUTERS_RAW
    if not path.is_file():
        return None
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    n = sum(1 for k in tensors if k.endswith(".router"))
    return [tensors[f"layers.{i}.router"] for i in range(n)]
