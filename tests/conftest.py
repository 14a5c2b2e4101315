"""Shared fixtures: every test gets its own MEMEX_HOME; heavy models load once per session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Commands run in-process unless a test opts into the resident service (tests/app/test_service*.py).
os.environ.setdefault("MEMEX_NO_SERVICE", "1")

PERSONA = Path(__file__).parent / "fixtures" / "persona"


@pytest.fixture(autouse=True)
def memex_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "memex-home"
    monkeypatch.setenv("MEMEX_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def embedder():
    """One real all-MiniLM-L6-v2 for the whole run (loading it costs seconds)."""
    from memory.embeddings import Embedder

    emb = Embedder()
    emb.embed(["warm up"])
    return emb


@pytest.fixture
def store(memex_home: Path, embedder):
    from memory import MemoryStore

    s = MemoryStore(memex_home, embedder=embedder)
    yield s
    s.close()


@pytest.fixture(scope="session")
def persona_notes() -> list[dict]:
    return [
        json.loads(line)
        for line in (PERSONA / "notes.jsonl").read_text(encoding="utf-8").splitlines()
    ]


@pytest.fixture(scope="session")
def persona_questions() -> list[dict]:
    return json.loads((PERSONA / "questions.json").read_text(encoding="utf-8"))
