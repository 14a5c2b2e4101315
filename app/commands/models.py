"""`memex models list|use NAME|add PATH`: GGUF models already on disk (bundled, Ollama, LM Studio,
MEMEX_HOME/models, added by path). Files are used where they lie, never copied."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from app.commands._common import AppContext, memex_command
from app.errors import MemexError

if TYPE_CHECKING:
    from app.settings import Settings
    from inference.discovery import FoundModel


@click.group(name="models")
def models() -> None:
    """GGUF models on this computer: list them, choose one, or add a file by path."""


def found_models(settings: "Settings") -> list["FoundModel"]:
    from inference.discovery import SearchRoots, discover

    roots = SearchRoots.from_env(settings.models_dir, settings.model_paths)
    return discover(roots, n_ctx=settings.n_ctx)


def active_path(settings: "Settings") -> str:
    """The GGUF answers, training and autofill use now ("" when it cannot be found)."""
    from inference.base import BackendError
    from inference.models import resolve_model

    try:
        return os.path.abspath(resolve_model(settings.model_path))
    except BackendError:
        return ""


def listing(settings: "Settings") -> dict[str, Any]:
    active = active_path(settings)
    rows = []
    for m in found_models(settings):
        row = m.to_json()
        row["active"] = bool(m.path) and _same(m.path, active) and settings.backend == "llamacpp"
        rows.append(row)
    return {"models": rows, "backend": settings.backend, "active_path": active}


def choose(settings: "Settings", name: str) -> dict[str, Any]:
    """Make `name` (a listed name, a unique name ending, or a GGUF path) the model memex runs."""
    from inference.discovery import find

    found = found_models(settings)
    model = find(found, name)
    if model is None and Path(name).expanduser().is_file():
        return add(settings, name, use=True)
    if model is None:
        names = ", ".join(m.name for m in found[:8]) or "none"
        raise MemexError(f"No model is called {name!r}; `memex models list` shows them (e.g. {names}).",
                         kind="not_found")
    if not model.usable:
        raise MemexError(model.problem, kind="bad_model")
    path = "" if model.origin == "bundled" else model.path
    settings.save(model_path=path, backend="llamacpp")
    return {"name": model.name, "path": model.path, "backend": "llamacpp", "active": True}


def add(settings: "Settings", path: str, *, use: bool = False) -> dict[str, Any]:
    from inference.gguf_info import read_gguf_info

    p = Path(path).expanduser()
    if not p.is_file():
        raise MemexError(f"{p} is not a file; give the path of a .gguf model.", kind="bad_input")
    p = Path(os.path.abspath(p))
    info = read_gguf_info(p, settings.n_ctx)
    if not info.usable:
        raise MemexError(info.problem, kind="bad_model")
    paths = list(settings.model_paths)
    if str(p) not in paths:
        paths.append(str(p))
    changes: dict[str, Any] = {"model_paths": paths}
    if use:
        changes.update(model_path=str(p), backend="llamacpp")
    settings.save(**changes)
    return {"name": f"added/{p.stem}", "path": str(p), "active": use, **info.to_json()}


def _same(a: str, b: str) -> bool:
    # Paths as given, not resolved: an Ollama blob linked to another file is still its own model.
    return bool(b) and os.path.normpath(os.path.abspath(a)) == os.path.normpath(b)


def _human_list(p: dict[str, Any]) -> str:
    if not p["models"]:
        return "No models found."
    lines = []
    for m in p["models"]:
        mark = "*" if m["active"] else " "
        if not m["usable"]:
            lines.append(f"{mark} {m['name']:<44} unusable: {m['problem']}")
            continue
        lines.append(f"{mark} {m['name']:<44} {m.get('architecture', ''):<9} {m.get('size', ''):>6} "
                     f"{m.get('quantisation', ''):<8} ctx {m.get('context_length', 0):<7} "
                     f"needs {m.get('ram', '?')} RAM{'' if m.get('chat_template') else ', no chat template'}")
    if p["backend"] != "llamacpp":
        lines.append(f"(answers come from the {p['backend']} backend now; `memex models use` switches back)")
    return "\n".join(lines)


@memex_command("list", group=models, human=_human_list)
def list_(obj: AppContext) -> dict[str, Any]:
    """Every GGUF model found, with what it needs to run; * marks the one in use."""
    return listing(obj.settings)


@memex_command("use", group=models, human=lambda p: f"Now answering with {p['name']} ({p['path']}).")
@click.argument("name")
def use(obj: AppContext, name: str) -> dict[str, Any]:
    """Answer, train and autofill with NAME (from `memex models list`)."""
    return choose(obj.settings, name)


@memex_command("add", group=models, human=lambda p: f"Added {p['name']} ({p['path']}); "
               + ("it is in use now." if p["active"] else f"`memex models use {p['name']}` switches to it."))
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option("--use", "use_", is_flag=True, help="Also switch to it.")
def add_cmd(obj: AppContext, path: str, use_: bool) -> dict[str, Any]:
    """Add a GGUF file by path (it stays where it is)."""
    return add(obj.settings, path, use=use_)
