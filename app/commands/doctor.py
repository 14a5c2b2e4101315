"""`memex doctor`: what is installed, which models load, and whether the data folder is healthy."""

from __future__ import annotations

import importlib.util
import shutil
from typing import Any

import click

from app.commands._common import AppContext, memex_command

EXTRAS = {
    "gui": ["PySide6"],
    "train": ["peft"],
    "bridge": ["nacl", "selectolax"],
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _models() -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        from memory.embeddings import bundled_model_dir

        out["embeddings"] = {"ok": True, "path": str(bundled_model_dir())}
    except Exception as exc:  # report, never crash the doctor
        out["embeddings"] = {"ok": False, "error": str(exc)}
    try:
        from inference.models import bundled_chat_model  # written with the answers feature

        path = bundled_chat_model()
        with open(path, "rb") as fh:
            magic = fh.read(4)
        out["chat_model"] = {"ok": magic == b"GGUF", "path": str(path)}
    except Exception as exc:
        out["chat_model"] = {"ok": False, "error": str(exc)}
    return out


def _human(p: dict[str, Any]) -> str:
    lines = [f"memex data folder: {p['home']}"]
    for name, ok in p["extras"].items():
        lines.append(f"  extra {name:<7} {'installed' if ok else 'missing (pip install memex[' + name + '])'}")
    for name, info in p["models"].items():
        lines.append(f"  model {name:<11} {'ok ' + info.get('path', '') if info['ok'] else 'FAILED: ' + info['error']}")
    lines.append(f"  chromium      {'found' if p['chromium'] else 'not found (needed for browser tests only)'}")
    d = p["data"]
    lines.append(f"  data          {'healthy' if d.get('ok') else 'needs attention'}: "
                 f"{d.get('memories', 0)} memories, {d.get('vectors', 0)} vectors, "
                 f"{d.get('pending_vector_ops', 0)} pending, {d.get('orphan_vectors', 0)} orphans, "
                 f"{d.get('missing_vectors', 0)} missing")
    if "repaired" in d:
        lines.append(f"  repaired      {d['repaired']}")
    elif not d.get("ok"):
        lines.append("  run `memex doctor --repair` to fix it")
    return "\n".join(lines)


@memex_command("doctor", human=_human)
@click.option("--repair", is_flag=True, help="Make SQLite, the keyword index and the vector store agree.")
def doctor(obj: AppContext, repair: bool) -> dict[str, Any]:
    """Check what is installed, which models load, and the data folder's health."""
    from memory import MemoryError_

    try:
        data = obj.runtime.memory.health(repair=repair)
    except MemoryError_ as exc:
        data = {"ok": False, "error": str(exc)}
    payload: dict[str, Any] = {
        "home": str(obj.settings.home),
        "extras": {name: all(_installed(m) for m in mods) for name, mods in EXTRAS.items()},
        "models": _models(),
        "chromium": shutil.which("chromium") is not None,
        "data": data,
        "ok": bool(data.get("ok")),
    }
    if not payload["ok"]:
        payload["_exit"] = 1
    return payload
