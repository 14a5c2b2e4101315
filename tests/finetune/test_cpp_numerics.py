"""The export check's torch reference rounds activations as llama.cpp does for quantized weights."""

from __future__ import annotations

import numpy as np

from tests.finetune.test_blocklora import _llama_logits
from tests.finetune.test_export import PROMPT
from tests.finetune.tiny_gguf import write_tiny_gguf
from tests.finetune.tiny_model import smollm2_gguf


def test_round_like_q8_keeps_32_value_blocks_on_an_8_bit_grid() -> None:
    import torch

    from finetune.cpp_numerics import round_like_q8

    x = torch.randn(3, 64)
    y = round_like_q8(x, 32)
    d = x.reshape(3, 2, 32).abs().amax(-1, keepdim=True) / 127
    q = y.reshape(3, 2, 32) / d
    assert torch.allclose(q, q.round(), atol=1e-3) and q.abs().max() <= 127.001
    assert (y - x).abs().max() <= d.max() / 2 + 1e-6
    assert torch.equal(round_like_q8(torch.zeros(1, 32), 32), torch.zeros(1, 32))


def test_torch_with_llamacpp_rounding_tracks_llamacpp_on_a_q4_1_model(tiny, base_cache, tmp_path) -> None:
    import torch
    from transformers import AutoTokenizer

    from finetune.cpp_numerics import llamacpp_rounding
    from finetune.model import load_base, prepare_base

    q4 = write_tiny_gguf(tiny.hf_dir, smollm2_gguf(), tmp_path / "tiny-q4_1.gguf", layer_type="Q4_1")
    info = prepare_base(str(q4), base_cache)  # transformers dequantizes the Q4_1 weights
    model, _ = load_base(info, mmap=False)
    ids = AutoTokenizer.from_pretrained(str(tiny.hf_dir))(PROMPT, add_special_tokens=False)["input_ids"]
    cpp = _llama_logits(q4, None, ids)
    with torch.no_grad():
        plain = model(input_ids=torch.tensor([ids])).logits[0].numpy()
        with llamacpp_rounding(model, q4, info.gguf_arch, info.num_layers) as hooked:
            rounded = model(input_ids=torch.tensor([ids])).logits[0].numpy()
        again = model(input_ids=torch.tensor([ids])).logits[0].numpy()
    assert hooked >= 7 * 2  # every projection of both layers (plus k/v cache rounding)
    assert np.abs(rounded - cpp).mean() < 0.9 * np.abs(plain - cpp).mean()  # measured 0.81x
    assert np.array_equal(again, plain)  # hooks removed on exit
