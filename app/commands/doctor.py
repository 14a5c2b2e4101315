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
        from inference.models import bundled_path

        path = bundled_path()  # the default chat model
        with open(path, "rb") as fh:
            magic = fh.read(4)
        out["chat_model"] = {"ok": magic == b"GGUF", "path": str(path)}
    except Exception as exc:
        out["chat_model"] = {"ok": False, "error": str(exc)}
    return out


def _human(p: dict[str, Any]) -> str:
    if "moved" in p:
        where = (
            f"the Chroma server at {p['chroma_url']}"
            if p["to"] == "server"
            else "the embedded store"
        )
        return f"Moved {p['moved']} vectors to {where}."
    lines = [f"memex data folder: {p['home']}"]
    for name, ok in p["extras"].items():
        lines.append(
            f"  extra {name:<7} "
            f"{'installed' if ok else 'missing (pip install memex[' + name + '])'}"
        )
    for name, info in p["models"].items():
        lines.append(
            f"  model {name:<11} "
            f"{'ok ' + info.get('path', '') if info['ok'] else 'FAILED: ' + info['error']}"
        )
    lines.append(
        "  chromium      "
        f"{'found' if p['chromium'] else 'not found (needed for browser tests only)'}"
    )
    d = p["data"]
    lines.append(
        f"  data          {'healthy' if d.get('ok') else 'needs attention'}: "
        f"{d.get('memories', 0)} memories, {d.get('vectors', 0)} vectors, "
        f"{d.get('pending_vector_ops', 0)} pending, {d.get('orphan_vectors', 0)} orphans, "
        f"{d.get('missing_vectors', 0)} missing"
    )
    if "repaired" in d:
        lines.append(f"  repaired      {d['repaired']}")
    elif not d.get("ok"):
        lines.append("  run `memex doctor --repair` to fix it")
    return "\n".join(lines)


def _move_vectors(obj: AppContext, to: str, url: str | None) -> dict[str, Any]:
    """Vectors from the embedded store to a Chroma server or back; chroma_url follows them."""
    from app.errors import MemexError
    from memory import MemoryStoreError
    from memory.vectors import VectorStore, move_vectors

    s = obj.settings
    server_url = url or s.chroma_url
    if not server_url:
        raise MemexError(
            "Moving vectors needs a Chroma server: give --chroma-url http://HOST:PORT "
            "or set chroma_url.",
            kind="bad_input",
        )
    embedded, server = VectorStore(s.chroma_dir), VectorStore(s.chroma_dir, server_url)
    src, dst = (embedded, server) if to == "server" else (server, embedded)
    try:
        moved = move_vectors(src, dst)
    except MemoryStoreError as exc:
        raise MemexError(str(exc), kind="vectors") from exc
    except Exception as exc:  # chromadb raises its own and httpx's types for an unreachable server
        raise MemexError(
            f"The Chroma server at {server_url} cannot be used ({exc.__class__.__name__}); "
            "start it with `chroma run` or fix chroma_url.",
            kind="chroma",
        ) from exc
    finally:
        embedded.close()
        server.close()
    s.save(chroma_url=server_url if to == "server" else "")
    return {"moved": moved, "to": to, "chroma_url": server_url if to == "server" else ""}


@memex_command("doctor", human=_human)
@click.option(
    "--repair", is_flag=True, help="Make SQLite, the keyword index and the vector store agree."
)
@click.option(
    "--move-vectors",
    type=click.Choice(["embedded", "server"]),
    default=None,
    help="Move the vectors to the embedded store or to the Chroma server (chroma_url).",
)
@click.option("--chroma-url", default=None, help="The Chroma server for --move-vectors server.")
def doctor(
    obj: AppContext, repair: bool, move_vectors: str | None, chroma_url: str | None
) -> dict[str, Any]:
    """Check what is installed, which models load, and the data folder's health."""
    from memory import MemoryStoreError

    if move_vectors:
        return _move_vectors(obj, move_vectors, chroma_url)

    try:
        data = obj.runtime.memory.health(repair=repair)
    except MemoryStoreError as exc:
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
