"""GGUF LoRA export checked against llama.cpp itself, on a tiny model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from finetune import ExportError
from finetune.export import export_gguf_lora
from finetune.model import prepare_base

PROMPT = "<|im_start|>user\nWhere do I live now?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def random_adapter(tiny, tmp_path_factory):
    """A LoRA with random B (a trained one on a tiny model is too close to zero to test)."""
    import torch
    from transformers import AutoModelForCausalLM

    from finetune.model import add_lora

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(str(tiny.hf_dir))
    peft_model = add_lora(
        model,
        8,
        16.0,
        ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    )
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 0.05)
    out = tmp_path_factory.mktemp("adapter") / "hf"
    peft_model.save_pretrained(str(out))
    return peft_model, out


def _llama_logits(model: Path, lora: Path | None, ids: list[int]) -> np.ndarray:
    from llama_cpp import Llama

    kw = {"lora_path": str(lora)} if lora else {}
    llm = Llama(str(model), n_ctx=256, logits_all=True, verbose=False, n_threads=1, **kw)
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])
    finally:
        llm.close()


def _torch_logits(peft_model, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return peft_model(input_ids=torch.tensor([ids])).logits[0].numpy()


def test_llamacpp_applies_the_exported_adapter_like_peft(
    tiny, random_adapter, base_cache, tmp_path
) -> None:
    from transformers import AutoTokenizer

    peft_model, hf = random_adapter
    info = prepare_base(str(tiny.hf_dir), base_cache)
    ids = AutoTokenizer.from_pretrained(str(tiny.hf_dir))(PROMPT, add_special_tokens=False)[
        "input_ids"
    ]
    expected = _torch_logits(peft_model, ids)
    good = export_gguf_lora(hf, info, tmp_path / "a.gguf", dtype="f32")
    wrong = export_gguf_lora(
        hf, dataclasses.replace(info, permute_qk=False), tmp_path / "b.gguf", dtype="f32"
    )
    d_good = np.abs(_llama_logits(tiny.gguf, good, ids) - expected).max()
    d_wrong = np.abs(_llama_logits(tiny.gguf, wrong, ids) - expected).max()
    d_base = np.abs(_llama_logits(tiny.gguf, None, ids) - expected).max()
    assert d_good < 2e-3
    # without the q/k permutation llama.cpp still runs, just silently worse
    assert d_wrong > 10 * d_good and d_base > 10 * d_good


def test_greedy_tokens_agree_between_torch_and_llamacpp(
    tiny, random_adapter, base_cache, tmp_path
) -> None:
    from transformers import AutoTokenizer

    from finetune.evaluate import LlamaQA, token_agreement, torch_greedy

    peft_model, hf = random_adapter
    info = prepare_base(str(tiny.hf_dir), base_cache)
    lora = export_gguf_lora(hf, info, tmp_path / "a.gguf", dtype="f16")
    tok = AutoTokenizer.from_pretrained(str(tiny.hf_dir))
    with LlamaQA(tiny.gguf, lora, threads=1) as qa:
        prompts = [
            qa.prompt_tokens(q)
            for q in ("Where do I live?", "What is my cat called?", "Who are you?")
        ]
        from finetune.batches import render_prompt

        # llama.cpp sees exactly the tokens training saw
        assert (
            prompts[0]
            == tok(render_prompt(tok, "Where do I live?"), add_special_tokens=False)["input_ids"]
        )
        ours = [qa.greedy_tokens(p, 16) for p in prompts]
    theirs = torch_greedy(peft_model, prompts, eos=tok.eos_token_id, n=16)
    assert token_agreement(ours, theirs, 16) >= 0.99
    from finetune.evaluate import teacher_forced_agreement

    assert teacher_forced_agreement(tiny.gguf, lora, peft_model, prompts, theirs, threads=1) >= 0.99


def test_interrupted_export_leaves_the_previous_file(
    tiny, random_adapter, base_cache, tmp_path, monkeypatch
) -> None:
    import gguf

    _, hf = random_adapter
    info = prepare_base(str(tiny.hf_dir), base_cache)
    out = export_gguf_lora(hf, info, tmp_path / "adapter.gguf")
    before = out.read_bytes()

    def boom(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", boom)
    with pytest.raises(ExportError, match="Could not write the adapter file"):
        export_gguf_lora(hf, info, out)
    assert out.read_bytes() == before
    assert not list(tmp_path.glob("*.tmp"))


def test_merged_model_matches_base_plus_adapter(tiny, random_adapter, base_cache, tmp_path) -> None:
    from transformers import AutoTokenizer

    from finetune.merge import merge_lora

    peft_model, hf = random_adapter
    info = prepare_base(str(tiny.hf_dir), base_cache)
    lora = export_gguf_lora(hf, info, tmp_path / "a.gguf", dtype="f32")
    merged = merge_lora(tiny.gguf, lora, tmp_path / "merged.gguf")  # f32 base: stays f32
    ids = AutoTokenizer.from_pretrained(str(tiny.hf_dir))(PROMPT, add_special_tokens=False)[
        "input_ids"
    ]
    expected = _torch_logits(peft_model, ids)
    assert np.abs(_llama_logits(merged, None, ids) - expected).max() < 2e-3


def test_merge_into_a_4bit_base_keeps_the_update_only_at_8_bits() -> None:
    """W + B @ A re-quantized to Q4_1 rounds most weights back to W; Q8_0 keeps the update."""
    import gguf

    from finetune.gguf_io import dequantize_array
    from finetune.merge import _target_type, merge_tensor

    T = gguf.GGMLQuantizationType
    rng = np.random.default_rng(0)
    w = dequantize_array(
        gguf.quants.quantize(rng.normal(0, 0.05, (64, 128)).astype(np.float32), T.Q4_1), T.Q4_1
    )
    a, b = rng.normal(0, 0.02, (8, 128)), rng.normal(0, 0.02, (64, 8))  # (r, in), (out, r)
    update = (b @ a) * 2.0

    def kept(qtype) -> float:
        data, raw = merge_tensor(w, a, b, 16.0, 1.0, qtype)
        got = dequantize_array(data, raw or qtype).reshape(w.shape) - w
        return float((got * update).sum() / (np.linalg.norm(got) * np.linalg.norm(update)))

    assert kept(T.Q4_1) < 0.5 and kept(T.Q8_0) > 0.95
    assert _target_type(T.Q4_1, "auto") == T.Q8_0 and _target_type(T.F32, "auto") == T.F32
    assert _target_type(T.Q4_1, "same") == T.Q4_1


def test_float32_copy_runs_in_llamacpp_like_torch(tiny, base_cache, tmp_path) -> None:
    """The F32 copy of a Q4_1 model: the same weights, and llama.cpp then computes what torch
    does (no 8-bit activation rounding), which is what the benchmark checks the export on."""
    import gguf
    import torch

    from finetune.evaluate import _plain_loader
    from finetune.gguf_io import dequantize, float32_copy
    from finetune.model import load_base
    from tests.finetune.tiny_gguf import write_tiny_gguf
    from tests.finetune.tiny_model import smollm2_gguf

    q4 = write_tiny_gguf(tiny.hf_dir, smollm2_gguf(), tmp_path / "q4.gguf", layer_type="Q4_1")
    f32 = float32_copy(q4, tmp_path / "f32.gguf")
    r4, r32 = gguf.GGUFReader(str(q4)), gguf.GGUFReader(str(f32))
    assert {t.tensor_type.name for t in r32.tensors} == {"F32"}
    for a, b in zip(r4.tensors, r32.tensors, strict=True):
        assert a.name == b.name and np.array_equal(dequantize(a), dequantize(b))
    assert set(r4.fields) == set(r32.fields)
    assert int(r32.fields["general.file_type"].contents()) == int(gguf.LlamaFileType.ALL_F32)

    model, tok = load_base(prepare_base(str(q4), base_cache), mmap=False)
    ids = tok(PROMPT, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        ref = model(input_ids=torch.tensor([ids])).logits[0].numpy()
    got = {}
    for name, path in (("q4", q4), ("f32", f32)):
        llm = _plain_loader(str(path), n_ctx=256, threads=1, lora_path=None, logits_all=True)
        try:
            llm.eval(ids)
            got[name] = np.abs(np.array(llm.scores[: len(ids)]) - ref).max()
        finally:
            llm.close()
    assert got["f32"] < 1e-3 < got["q4"]
