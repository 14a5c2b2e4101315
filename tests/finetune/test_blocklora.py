"""Block LoRA: an adapter constant over Q4_1's 32-weight blocks merges into the block offsets
exactly, so the served model keeps the base's size and speed and answers like the adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.finetune.test_export import PROMPT
from tests.finetune.test_training import _cfg
from tests.finetune.tiny_gguf import write_tiny_gguf
from tests.finetune.tiny_model import smollm2_gguf


def _llama_logits(model: Path, lora: Path | None, ids: list[int]) -> np.ndarray:
    from finetune.evaluate import _plain_loader  # without ggml's AMX buffers (SIGILL in some VMs)

    llm = _plain_loader(
        str(model), n_ctx=256, threads=1, lora_path=str(lora) if lora else None, logits_all=True
    )
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])
    finally:
        llm.close()


def _q4_1(rng, shape):
    import gguf

    return gguf.quants.quantize(
        rng.normal(0, 0.05, shape).astype(np.float32), gguf.GGMLQuantizationType.Q4_1
    )


def test_offsets_take_the_whole_update_and_nothing_else() -> None:
    import gguf

    from finetune.blocklora import block_constant, merge_offsets
    from finetune.gguf_io import dequantize_array

    T = gguf.GGMLQuantizationType
    rng = np.random.default_rng(0)
    raw = _q4_1(rng, (64, 128))  # (out, bytes)
    a = np.repeat(rng.normal(0, 0.1, (8, 4)), 32, axis=1)  # (r, in) constant over blocks of 32
    b = rng.normal(0, 0.05, (64, 8))  # (out, r)
    assert block_constant(a) and not block_constant(rng.normal(size=(8, 128)))
    merged = merge_offsets(raw, "Q4_1", a, b, 2.0)
    blocks, new_blocks = raw.reshape(64, 4, 20), merged.reshape(64, 4, 20)
    assert np.array_equal(blocks[:, :, :2], new_blocks[:, :, :2])  # scales untouched
    assert np.array_equal(blocks[:, :, 4:], new_blocks[:, :, 4:])  # 4-bit codes untouched
    want = dequantize_array(raw, T.Q4_1).reshape(64, 128) + (b @ a) * 2.0
    got = dequantize_array(merged, T.Q4_1).reshape(64, 128)
    assert np.abs(got - want).max() < 1e-3  # only the f16 rounding of the new offsets


def test_mismatched_adapter_is_refused() -> None:
    from finetune.blocklora import merge_offsets

    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="does not match"):
        merge_offsets(_q4_1(rng, (64, 128)), "Q4_1", np.ones((8, 64)), np.ones((64, 8)), 1.0)


def test_block_lora_trains_resumes_and_merges_like_the_runtime_adapter(
    tiny, tiny_dataset, base_cache, tmp_path
) -> None:
    import gguf

    from finetune.blocklora import base_supports_blocks, block_constant
    from finetune.merge import merge_lora, read_lora
    from finetune.trainer import Cancelled, train, use_block_lora

    q4 = write_tiny_gguf(
        tiny.hf_dir, smollm2_gguf(), tmp_path / "tiny-q4_1.gguf", layer_type="Q4_1"
    )
    assert base_supports_blocks(str(q4)) and not base_supports_blocks(str(tiny.gguf))
    assert use_block_lora(_cfg(tiny, tiny_dataset, base_cache, tmp_path, base_model=str(q4)))
    assert not use_block_lora(_cfg(tiny, tiny_dataset, base_cache, tmp_path))  # HF folder: plain

    cfg = {"lora_kind": "block", "steps": 4, "lr": 5e-2}
    events: list[dict] = []
    full = train(_cfg(tiny, tiny_dataset, base_cache, tmp_path / "full", **cfg), events.append)
    assert any("block LoRA" in e.get("message", "") for e in events)
    assert min(full.losses[1:]) < full.loss_first
    # a run stopped after step 2 resumes from its checkpoint onto the same curve
    half = _cfg(tiny, tiny_dataset, base_cache, tmp_path / "half", **cfg)
    with pytest.raises(Cancelled):
        train(half, lambda e: None, should_stop=iter([False, False, True]).__next__)
    resumed = train(half, lambda e: None)
    assert resumed.resumed_from == 2 and resumed.losses == pytest.approx(full.losses, rel=1e-5)
    pairs, alpha = read_lora(Path(full.adapter_gguf))
    assert pairs and all(block_constant(a) for a, _ in pairs.values())

    # a trained tiny adapter is near zero: scale B so the merge has something to carry
    lora = tmp_path / "big.gguf"
    reader = gguf.GGUFReader(full.adapter_gguf)
    w = gguf.GGUFWriter(str(lora), "llama")
    w.add_type("adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", alpha)
    rng = np.random.default_rng(2)
    for t in reader.tensors:
        arr = np.asarray(t.data, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)])
        if t.name.endswith("lora_b"):
            arr = rng.normal(0, 0.05, arr.shape).astype(np.float32)
        w.add_tensor(t.name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    merged = merge_lora(q4, lora, tmp_path / "merged.gguf")  # auto
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(merged)).tensors}
    assert {types[n] for n in pairs} == {"Q4_1"}  # no 8-bit copy: the base's size
    assert abs(merged.stat().st_size - q4.stat().st_size) < 4096
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(str(tiny.hf_dir))(PROMPT, add_special_tokens=False)[
        "input_ids"
    ]
    runtime = _llama_logits(q4, lora, ids)
    base = _llama_logits(q4, None, ids)
    got = _llama_logits(merged, None, ids)
    moved = np.abs(runtime - base).max()
    assert moved > 0.05  # the adapter changes the logits ...
    assert np.abs(got - runtime).max() < 0.05 * moved  # ... and the merged model changes them alike
