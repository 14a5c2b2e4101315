from __future__ import annotations

from pathlib import Path

import pytest

from tests.finetune.tiny_model import TinyModel, build_tiny, sample_memories


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from finetune.data import synthesize, write_jsonl

    path = tmp_path_factory.mktemp("tiny-data") / "dataset.jsonl"
    return write_jsonl(synthesize(sample_memories()), path)


@pytest.fixture(scope="session")
def base_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("base-cache")
