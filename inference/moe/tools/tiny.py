"""Tiny random MoE checkpoints of the three families, written as real HF folders.

Used by unit tests (exactness against transformers) and by `--model tiny`. The weights
are random: never calibrate prediction or caching on them. Expert tensors are stored one
per expert, the on-disk format of published checkpoints.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

FAMILY_NAMES = ("mixtral", "olmoe", "qwen2_moe")
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _hf_config(family: str, size: dict[str, int]) -> Any:
    from transformers import MixtralConfig, OlmoeConfig, Qwen2MoeConfig

    common: dict[str, Any] = dict(
        vocab_size=size["vocab"],
        hidden_size=size["hidden"],
        num_hidden_layers=size["layers"],
        num_attention_heads=size["heads"],
        num_key_value_heads=size["kv_heads"],
        num_experts_per_tok=size["top_k"],
        max_position_embeddings=2048,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=0,
    )
    if family == "mixtral":
        return MixtralConfig(
            **common, num_local_experts=size["experts"], intermediate_size=size["expert_dim"]
        )
    if family == "olmoe":
        return OlmoeConfig(
            **common,
            num_experts=size["experts"],
            intermediate_size=size["expert_dim"],
            norm_topk_prob=False,
            clip_qkv=8.0,
        )
    return Qwen2MoeConfig(
        **common,
        num_experts=size["experts"],
        moe_intermediate_size=size["expert_dim"],
        intermediate_size=2 * size["expert_dim"],
        shared_expert_intermediate_size=size["expert_dim"],
        norm_topk_prob=False,
        decoder_sparse_step=1,
        mlp_only_layers=[size["layers"] - 1] if size["layers"] > 2 else [],
    )


def _weights(family: str, cfg: Any, size: dict[str, int], seed: int) -> dict[str, Any]:
    import torch

    from inference.moe.config import FAMILIES, from_hf_config

    moe = from_hf_config(cfg)
    spec = FAMILIES[family]
    g = torch.Generator().manual_seed(seed)
    h, nh, kvh, d = moe.hidden_size, moe.num_heads, moe.num_kv_heads, moe.head_dim

    def rnd(*shape: int, std: float = 0.08) -> torch.Tensor:
        return (torch.randn(*shape, generator=g) * std).contiguous()

    def norm(n: int) -> torch.Tensor:
        return (1.0 + 0.1 * torch.randn(n, generator=g)).contiguous()

    w: dict[str, torch.Tensor] = {
        "model.embed_tokens.weight": rnd(moe.vocab_size, h, std=1.0),
        "model.norm.weight": norm(h),
        "lm_head.weight": rnd(moe.vocab_size, h),
    }
    for i in range(moe.num_layers):
        p, a = f"model.layers.{i}.", f"model.layers.{i}.self_attn."
        w[p + "input_layernorm.weight"] = norm(h)
        w[p + "post_attention_layernorm.weight"] = norm(h)
        w[a + "q_proj.weight"] = rnd(nh * d, h)
        w[a + "k_proj.weight"] = rnd(kvh * d, h)
        w[a + "v_proj.weight"] = rnd(kvh * d, h)
        w[a + "o_proj.weight"] = rnd(h, nh * d)
        if family == "qwen2_moe":
            for proj, rows in (("q", nh * d), ("k", kvh * d), ("v", kvh * d)):
                w[a + f"{proj}_proj.bias"] = rnd(rows)
        if family == "olmoe":
            w[a + "q_norm.weight"] = norm(nh * d)
            w[a + "k_norm.weight"] = norm((h // nh) * kvh)
        if i not in moe.moe_layers:
            n = moe.dense_dim
            w[p + "mlp.gate_proj.weight"] = rnd(n, h)
            w[p + "mlp.up_proj.weight"] = rnd(n, h)
            w[p + "mlp.down_proj.weight"] = rnd(h, n)
            continue
        # a wide router spread keeps top-k choices far from ties, so exactness tests are stable
        w[spec.router_key(i)] = rnd(moe.num_experts, h, std=0.5)
        for e in range(moe.num_experts):
            gate, up, down = spec.expert_keys(i, e)
            w[gate] = rnd(moe.expert_dim, h)
            w[up] = rnd(moe.expert_dim, h)
            w[down] = rnd(h, moe.expert_dim)
        if family == "qwen2_moe":
            s = moe.shared_expert_dim
            w[p + "mlp.shared_expert.gate_proj.weight"] = rnd(s, h)
            w[p + "mlp.shared_expert.up_proj.weight"] = rnd(s, h)
            w[p + "mlp.shared_expert.down_proj.weight"] = rnd(h, s)
            w[p + "mlp.shared_expert_gate.weight"] = rnd(1, h)
    return w


def write_tokenizer(folder: Path, vocab_size: int) -> None:
    """A byte-level tokenizer (256 bytes + chat specials) with a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_chars = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for ch in sorted(byte_chars):
        vocab[ch] = len(vocab)
    if len(vocab) > vocab_size:
        raise ValueError(f"vocab_size must be >= {len(vocab)}")
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        bos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIALS[1:]),
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(folder))


SIZES: dict[str, dict[str, int]] = {
    # unit tests: seconds to build and run
    "test": dict(
        vocab=320, hidden=64, layers=3, heads=4, kv_heads=2, experts=8, top_k=2, expert_dim=32
    ),
    # `--model tiny`: big enough that expert traffic, not Python overhead, shows in benchmarks
    "bench": dict(
        vocab=320, hidden=256, layers=4, heads=8, kv_heads=4, experts=32, top_k=4, expert_dim=256
    ),
}


def build_tiny(
    out: Path, family: str = "mixtral", size: str | dict[str, int] = "test", seed: int = 0
) -> Path:
    """Write a tiny random checkpoint folder (config.json, model.safetensors, tokenizer). Atomic."""
    from safetensors.torch import save_file

    if family not in FAMILY_NAMES:
        raise ValueError(f"family must be one of {FAMILY_NAMES}")
    dims = SIZES[size] if isinstance(size, str) else size
    out = Path(out)
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        cfg = _hf_config(family, dims)
        cfg.architectures = [
            {
                "mixtral": "MixtralForCausalLM",
                "olmoe": "OlmoeForCausalLM",
                "qwen2_moe": "Qwen2MoeForCausalLM",
            }[family]
        ]
        cfg.save_pretrained(str(tmp))
        save_file(
            _weights(family, cfg, dims, seed),
            str(tmp / "model.safetensors"),
            metadata={"format": "pt"},
        )
        write_tokenizer(tmp, dims["vocab"])
        (tmp / "memex-tiny.json").write_text(json.dumps({"family": family, "seed": seed, **dims}))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def ensure_tiny(models_dir: Path, family: str = "mixtral", size: str = "bench") -> Path:
    """The cached `--model tiny` checkpoint under `models_dir` (built on first use)."""
    out = Path(models_dir) / f"tiny-{family}-{size}"
    if not (out / "model.safetensors").is_file():
        build_tiny(out, family, size)
    return out
