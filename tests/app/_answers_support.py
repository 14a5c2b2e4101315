"""Helpers for the answer/chat/inbox/serve tests: a Runtime over a real store and model."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from app.runtime import Runtime
from app.settings import load_settings

PERSONA = Path(__file__).resolve().parents[1] / "fixtures" / "persona"


def make_runtime(home: Path, embedder: Any, **settings: Any) -> Runtime:
    """A Runtime whose store shares the session's embedder (loading MiniLM per test is slow)."""
    from memory import MemoryStore

    settings.setdefault("n_ctx", 2048)
    settings.setdefault("max_answer_tokens", 32)
    rt = Runtime(load_settings(home=home, **settings))
    rt.settings.ensure_home()
    rt._memory = MemoryStore(rt.settings.home, embedder=embedder)
    return rt


def load_persona(rt: Runtime) -> dict[str, str]:
    """Remember every persona note through the Runtime; returns memory id -> note key."""
    keys: dict[str, str] = {}
    for line in (PERSONA / "notes.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        mem, _ = rt.remember(
            d["text"], source=d["source"], at=datetime.fromisoformat(d["at"]), kind=d["kind"]
        )
        keys[mem.id] = d["key"]
    return keys


def persona(name: str) -> Any:
    return json.loads((PERSONA / name).read_text(encoding="utf-8"))
