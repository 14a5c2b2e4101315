"""Bridge tests: a temp MEMEX_HOME, real SQLite store and bridge state, real PyNaCl."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("MEMEX_HOME", str(h))
    # a private runtime dir, so the app socket of one test is never seen by another
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    return h


@pytest.fixture
def settings(home: Path):
    from app.settings import load_settings

    return load_settings(home=home)


@pytest.fixture
def runtime(settings) -> Iterator[object]:
    from app.runtime import Runtime

    rt = Runtime(settings)
    rt.memory.profile_set("given-name", "Ada")
    rt.memory.profile_set("family-name", "Lovelace")
    rt.memory.profile_set("email", "ada@example.org")
    yield rt
    rt.close()
