"""`--offload cpu --max-gpu-gb`: which layers skip recomputation, and that it changes no
gradient."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest

from finetune import TrainConfig


def _config(layers: int = 30) -> SimpleNamespace:  # SmolLM2-135M's shape
    return SimpleNamespace(
        hidden_size=576, intermediate_size=1536, vocab_size=49152, num_hidden_layers=layers
    )


def _train_cfg(gb: float, offload: str = "cpu") -> TrainConfig:
    return TrainConfig(
        base_model="x",
        dataset="x",
        work_dir="x",
        cache_dir="x",
        offload=offload,
        batch=8,
        seq_len=1024,
        max_gpu_gb=gb,
    )


def test_kept_layers_grow_with_the_budget_and_stay_in_range() -> None:
    from finetune.offload import kept_layers

    kept = [
        kept_layers(_train_cfg(gb), _config(), n_params=135_000_000)
        for gb in (0.5, 2, 4, 8, 16, 64)
    ]
    assert kept[0] == 0  # below the fixed part: every layer is recomputed
    assert kept == sorted(kept) and kept[-1] == 30  # monotone, capped at the layer count
    assert 0 < kept[3] < 30  # 8 GB: about half of a 16 GB baseline keeps some layers


def test_max_gpu_gb_belongs_to_the_cpu_policy() -> None:
    with pytest.raises(ValueError, match="offload cpu"):
        _train_cfg(4.0, offload="disk")
    with pytest.raises(ValueError, match="max_gpu_gb"):
        _train_cfg(-1.0)


def test_partly_checkpointed_layers_give_the_same_gradients(tiny) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from finetune.loss import checkpoint_layers

    torch.manual_seed(0)
    ids = torch.randint(0, 100, (2, 24))
    entered = []

    @contextlib.contextmanager
    def kept():
        entered.append(1)
        yield

    grads = {}
    for skip in (None, 0, 1):
        model = AutoModelForCausalLM.from_pretrained(str(tiny.hf_dir), dtype=torch.float32)
        n_layers = model.config.num_hidden_layers
        if skip is not None:
            assert checkpoint_layers(model, skip=skip, kept_context=kept) == n_layers - skip
        model(input_ids=ids, labels=ids, use_cache=False).loss.backward()  # as training runs it
        grads[skip] = torch.cat(
            [p.grad.reshape(-1) for p in model.parameters() if p.grad is not None]
        )
    assert len(entered) == 1  # one forward through the one kept layer
    torch.testing.assert_close(grads[0], grads[None])
    torch.testing.assert_close(grads[1], grads[None])


def test_without_cuda_the_budget_is_said_to_do_nothing(tmp_path) -> None:
    import torch

    from finetune.offload import CpuPolicy

    if torch.cuda.is_available():
        pytest.skip("the fallback note is for machines without CUDA")
    notes = CpuPolicy(_train_cfg(4.0), tmp_path).notes
    assert len(notes) == 1 and "--max-gpu-gb has no effect" in notes[0]
