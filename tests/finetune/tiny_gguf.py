"""Write a tiny HF Llama as a GGUF llama.cpp can run (tokenizer copied from the SmolLM2 GGUF).

A miniature of llama.cpp's convert_hf_to_gguf for the llama architecture, including its
q/k row permutation, so adapter export can be checked against llama.cpp in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_tiny_gguf(hf_dir: Path, tokenizer_gguf: Path, out: Path, layer_type: str = "F32") -> Path:
    """`layer_type` (e.g. "Q4_1"): how the 2-D layer weights are stored, as a quantized chat
    model."""
    import gguf
    from safetensors.numpy import load_file
    from transformers import AutoConfig

    from finetune.export import permute_rows
    from finetune.gguf_io import copy_metadata

    cfg = AutoConfig.from_pretrained(str(hf_dir))
    sd = load_file(str(hf_dir / "model.safetensors"))
    reader = gguf.GGUFReader(str(tokenizer_gguf))
    w = gguf.GGUFWriter(str(out), "llama")
    copy_metadata(reader, w, skip=("general.", "llama."))
    w.add_name("tiny")
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_rope_freq_base(
        float(cfg.rope_parameters["rope_theta"])
        if getattr(cfg, "rope_parameters", None)
        else float(cfg.rope_theta)
    )
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
    }
    per_layer = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    for i in range(cfg.num_hidden_layers):
        for hf, gg in per_layer.items():
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{gg}.weight"
    for hf, gg in names.items():
        arr = sd[hf].astype(np.float32)
        if gg.endswith("attn_q.weight"):
            arr = permute_rows(arr, cfg.num_attention_heads)
        elif gg.endswith("attn_k.weight"):
            arr = permute_rows(arr, cfg.num_key_value_heads)
        if layer_type != "F32" and gg.startswith("blk.") and arr.ndim == 2:
            qt = gguf.GGMLQuantizationType[layer_type]
            w.add_tensor(gg, gguf.quants.quantize(np.ascontiguousarray(arr), qt), raw_dtype=qt)
        else:
            w.add_tensor(gg, np.ascontiguousarray(arr))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out
