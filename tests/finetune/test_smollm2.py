"""The real thing, briefly: SmolLM2-135M from its GGUF, one training step, GGUF LoRA in llama.cpp.

Exact torch/llama.cpp agreement is tested on the tiny f32 model (test_export.py); on the Q4_1
base, greedy answers of an untrained adapter sit on near-ties (top-2 logit margins of 0.01-0.02
measured here), so the benchmark, not this test, reports token agreement.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune import TrainConfig
from tests.finetune.tiny_model import smollm2_gguf

pytestmark = pytest.mark.slow


def test_smollm2_adapter_exports_and_runs_in_llamacpp(tiny_dataset, tmp_path: Path) -> None:
    import gguf

    from finetune.evaluate import LlamaQA
    from finetune.gguf_io import field_value
    from finetune.trainer import train

    base = smollm2_gguf()
    cfg = TrainConfig(
        base_model=str(base),
        dataset=str(tiny_dataset),
        work_dir=str(tmp_path / "w"),
        cache_dir=str(tmp_path / "cache"),
        offload="disk",
        steps=1,
        batch=1,
        seq_len=96,
    )
    res = train(cfg, lambda e: None)
    reader = gguf.GGUFReader(res.adapter_gguf)
    assert field_value(reader, "adapter.type") == "lora"
    assert field_value(reader, "general.architecture") == "llama"
    names = {t.name for t in reader.tensors}
    assert len(names) == 30 * 7 * 2 and "blk.29.attn_k.weight.lora_b" in names
    with LlamaQA(base, res.adapter_gguf, max_tokens=8) as qa:
        assert qa.greedy_tokens(qa.prompt_tokens("Where do I live?"), 8)
