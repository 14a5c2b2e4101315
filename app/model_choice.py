"""Choosing the GGUF model memex runs, from the models found on this computer (used where
they lie, never copied). The `memex models` command and the Models screen share this."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import MemexError

if TYPE_CHECKING:
    from app.settings import Settings
    from inference.discovery import FoundModel


def found_models(settings: Settings) -> list[FoundModel]:
    from inference.discovery import SearchRoots, discover

    roots = SearchRoots.from_env(settings.models_dir, settings.model_paths)
    return discover(roots, n_ctx=settings.n_ctx)


def active_path(settings: Settings) -> str:
    """The GGUF answers, training and autofill use now ("" when it cannot be found)."""
    from inference.base import BackendError
    from inference.models import resolve_model

    try:
        return os.path.abspath(resolve_model(settings.model_path))
    except BackendError:
        return ""


def listing(settings: Settings) -> dict[str, Any]:
    active = active_path(settings)
    rows = []
    for m in found_models(settings):
        row = m.to_json()
        row["active"] = bool(m.path) and _same(m.path, active) and settings.backend == "llamacpp"
        rows.append(row)
    return {"models": rows, "backend": settings.backend, "active_path": active}


def choose(settings: Settings, name: str) -> dict[str, Any]:
    """Make `name` (a listed name, a unique name ending, or a GGUF path) the model memex runs."""
    from inference.discovery import find

    found = found_models(settings)
    model = find(found, name)
    if model is None and Path(name).expanduser().is_file():
        return add(settings, name, use=True)
    if model is None:
        names = ", ".join(m.name for m in found[:8]) or "none"
        raise MemexError(
            f"No model is called {name!r}; `memex models list` shows them (e.g. {names}).",
            kind="not_found",
        )
    if not model.usable:
        raise MemexError(model.problem, kind="bad_model")
    path = "" if model.origin == "bundled" else model.path
    settings.save(model_path=path, backend="llamacpp")
    return {"name": model.name, "path": model.path, "backend": "llamacpp", "active": True}


def add(settings: Settings, path: str, *, use: bool = False) -> dict[str, Any]:
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
