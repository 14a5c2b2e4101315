"""Non-expert weights (embeddings, attention, norms, routers, shared/dense MLPs).

These stay on the compute device for the whole run; only routed experts are offloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inference.moe.checkpoint import Checkpoint
from inference.moe.config import MoEConfig

if TYPE_CHECKING:
    import torch

Tensor = Any  # torch.Tensor at run time; kept loose so importing this module stays light
OptTensor = Any  # torch.Tensor or None (Any so call sites need no narrowing in the hot loop)


@dataclass
class LayerWeights:
    in_norm: Tensor  # [H]
    post_norm: Tensor  # [H]
    q: Tensor  # [nh*D, H]
    k: Tensor  # [kvh*D, H]
    v: Tensor  # [kvh*D, H]
    o: Tensor  # [H, nh*D]
    q_bias: OptTensor = None
    k_bias: OptTensor = None
    v_bias: OptTensor = None
    o_bias: OptTensor = None
    q_norm: OptTensor = None  # OLMoE: RMSNorm over the whole q projection [nh*D]
    k_norm: OptTensor = None  # [kvh*D]
    router: OptTensor = None  # [E, H]; None for a dense layer
    shared_gate_up: OptTensor = None  # Qwen2-MoE shared expert [2S, H]
    shared_down: OptTensor = None  # [H, S]
    shared_gate: OptTensor = None  # [1, H]
    dense_gate_up: OptTensor = None  # dense MLP layer [2I, H]
    dense_down: OptTensor = None  # [H, I]


@dataclass
class DenseWeights:
    embed: Tensor  # [V, H]
    norm: Tensor  # [H]
    lm_head: Tensor  # [V, H] (the embedding when tied)
    layers: list[LayerWeights]
    inv_freq: Tensor  # [D/2] float32
    attention_scaling: float = 1.0

    def nbytes(self) -> int:
        seen: set[int] = set()
        total = 0
        for t in _tensors(self):
            if id(t) not in seen:
                seen.add(id(t))
                total += t.numel() * t.element_size()
        return total

    def router_weights(self) -> list[Tensor | None]:
        return [layer.router for layer in self.layers]


def _tensors(dense: DenseWeights) -> list[Any]:
    out = [dense.embed, dense.norm, dense.lm_head]
    for layer in dense.layers:
        out.extend(v for v in vars(layer).values() if v is not None)
    return out


def load_dense(
    ckpt: Checkpoint, cfg: MoEConfig, hf: Any, device: str, dtype: torch.dtype
) -> DenseWeights:
    """Read every non-expert tensor (shapes checked) onto `device` in `dtype`."""
    import torch

    from inference.moe.config import rope_inv_freq

    h, nh, kvh, d = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim

    def get(key: str, shape: tuple[int, ...]) -> torch.Tensor:
        return ckpt.get_shaped(key, shape).to(device=device, dtype=dtype)

    def opt(key: str, shape: tuple[int, ...]) -> torch.Tensor | None:
        return get(key, shape) if ckpt.has(key) else None

    embed = get("model.embed_tokens.weight", (cfg.vocab_size, h))
    if cfg.tie_word_embeddings or not ckpt.has("lm_head.weight"):
        lm_head = embed
    else:
        lm_head = get("lm_head.weight", (cfg.vocab_size, h))
    layers: list[LayerWeights] = []
    moe = set(cfg.moe_layers)
    for i in range(cfg.num_layers):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        lw = LayerWeights(
            in_norm=get(p + "input_layernorm.weight", (h,)),
            post_norm=get(p + "post_attention_layernorm.weight", (h,)),
            q=get(a + "q_proj.weight", (nh * d, h)),
            k=get(a + "k_proj.weight", (kvh * d, h)),
            v=get(a + "v_proj.weight", (kvh * d, h)),
            o=get(a + "o_proj.weight", (h, nh * d)),
        )
        if cfg.attn_bias or cfg.qkv_bias:
            lw.q_bias = get(a + "q_proj.bias", (nh * d,))
            lw.k_bias = get(a + "k_proj.bias", (kvh * d,))
            lw.v_bias = get(a + "v_proj.bias", (kvh * d,))
        if cfg.attn_bias:
            lw.o_bias = get(a + "o_proj.bias", (h,))
        if cfg.spec.qk_norm:
            lw.q_norm = get(a + "q_norm.weight", (nh * d,))
            # transformers sizes k_norm as (H // nh) * kvh
            lw.k_norm = get(a + "k_norm.weight", ((h // nh) * kvh,))
        if i in moe:
            lw.router = get(cfg.spec.router_key(i), (cfg.num_experts, h))
            if cfg.spec.shared_expert:
                m = p + "mlp.shared_expert."
                s = cfg.shared_expert_dim
                lw.shared_gate_up = torch.cat(
                    [get(m + "gate_proj.weight", (s, h)), get(m + "up_proj.weight", (s, h))], dim=0
                )
                lw.shared_down = get(m + "down_proj.weight", (h, s))
                lw.shared_gate = get(p + "mlp.shared_expert_gate.weight", (1, h))
        else:
            m = p + "mlp."
            n = cfg.dense_dim
            lw.dense_gate_up = torch.cat(
                [get(m + "gate_proj.weight", (n, h)), get(m + "up_proj.weight", (n, h))], dim=0
            )
            lw.dense_down = get(m + "down_proj.weight", (h, n))
        layers.append(lw)
    inv_freq, scaling = rope_inv_freq(hf, cfg)
    return DenseWeights(
        embed=embed,
        norm=get("model.norm.weight", (h,)),
        lm_head=lm_head,
        layers=layers,
        inv_freq=inv_freq.to(device),
        attention_scaling=scaling,
    )
