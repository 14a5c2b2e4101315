"""Tiny random checkpoints of the three MoE families, built once per session in tmp."""

from __future__ import annotations

from pathlib import Path

import pytest

FAMILIES = ("mixtral", "olmoe", "qwen2_moe")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from inference.moe.tools.tiny import build_tiny

    root = tmp_path_factory.mktemp("moe-tiny")
    return {family: build_tiny(root / family, family, "test", seed=1) for family in FAMILIES}


@pytest.fixture(scope="session")
def reference_logits():
    """fp32 logits of transformers' own model for (folder, token ids), cached per session."""
    import torch
    from transformers import AutoModelForCausalLM

    models: dict[Path, object] = {}

    def run(folder: Path, ids: list[int]) -> torch.Tensor:
        if folder not in models:
            models[folder] = AutoModelForCausalLM.from_pretrained(
                str(folder), dtype=torch.float32
            ).eval()
        with torch.no_grad():
            return models[folder](torch.tensor([ids])).logits[0]  # type: ignore[operator]

    return run


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "expert-cache"
