"""Adapters on disk and what the chat backend serves: versioned LoRA folders, the active one.

Adapters live under `settings.adapters_dir`, one folder per version (`v0001`, ...) holding
the GGUF LoRA (the source of truth), the peft adapter, the dataset it was trained on, its
metrics and, when the base is a GGUF, a merged re-quantized model for fast serving.
`active.json` names the active version and the activation history used by rollback. A
failed or cancelled training never touches the active adapter.

Below the Runtime: it reads `served_model` to choose the chat model, and nothing here knows
about training (app/training.py adds versions through `AdapterStore.add`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import MemexError

if TYPE_CHECKING:
    from app.settings import Settings

ACTIVE_FILE = "active.json"
# Serve the merged model instead of base + runtime LoRA. Measured (benchmarks/finetune.py,
# SmolLM2 Q4_1, 2 cores): merged with adapted tensors at Q8_0 answers exactly like the runtime
# LoRA (persona QA 14/30 both, greedy agreement 1.0) and decodes 0.75-0.82x the base vs 0.64-0.69x
# for the runtime LoRA; merged back to Q4_1 decodes like the base but loses the adapter (QA 1/30).
SERVE_MERGED = True


class AdapterStore:
    """Versioned adapters and which one is active; all writes are atomic renames."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.adapters_dir

    def _state(self) -> dict[str, Any]:
        path = self.root / ACTIVE_FILE
        if not path.exists():
            return {"active": None, "history": []}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise MemexError(
                f"The adapter state file {path} is damaged ({exc}); activate an adapter again.",
                kind="bad_state",
            ) from exc
        return data if isinstance(data, dict) else {"active": None, "history": []}

    def _write_state(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / (ACTIVE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        os.replace(tmp, self.root / ACTIVE_FILE)

    def versions(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and p.name.startswith("v") and (p / "adapter.gguf").exists()
        )

    def active(self) -> str | None:
        version = self._state().get("active")
        return version if version and (self.root / version / "adapter.gguf").exists() else None

    def path(self, version: str) -> Path:
        if version not in self.versions():
            raise MemexError(
                f"There is no adapter {version!r}; see `memex adapters list`.", kind="not_found"
            )
        return self.root / version

    def activate(self, version: str) -> str:
        self.path(version)
        state = self._state()
        history = [v for v in state.get("history", []) if v != version] + [version]
        self._write_state({"active": version, "history": history})
        return version

    def rollback(self) -> str | None:
        """Reactivate the previously active version (or none if there was none)."""
        state = self._state()
        history = [v for v in state.get("history", []) if v in self.versions()]
        if not history or state.get("active") is None:
            raise MemexError("There is no active adapter to roll back.", kind="not_found")
        history = history[:-1] if history[-1] == state.get("active") else history
        previous = history[-1] if history else None
        self._write_state({"active": previous, "history": history})
        return previous

    def metrics(self, version: str) -> dict[str, Any]:
        path = self.root / version / "metrics.json"
        try:
            return dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            return {}

    def update_metrics(self, version: str, **changes: Any) -> None:
        path = self.path(version) / "metrics.json"
        data = {**self.metrics(version), **changes}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, path)

    def add(self, files: dict[str, Path], metrics: dict[str, Any]) -> str:
        """Copy a finished run into the next version folder (temp folder + rename)."""
        self.root.mkdir(parents=True, exist_ok=True)
        existing = [int(v[1:]) for v in self.versions() if v[1:].isdigit()]
        version = f"v{(max(existing) + 1 if existing else 1):04d}"
        tmp = self.root / f".{version}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            for name, src in files.items():
                if src.is_dir():
                    shutil.copytree(src, tmp / name)
                else:
                    shutil.copy2(src, tmp / name)
            metrics = {
                **metrics,
                "version": version,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
            os.replace(tmp, self.root / version)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # a half-copied version is never visible
            raise
        return version


def active_adapter_path(settings: Settings) -> str | None:
    """The active GGUF LoRA file, for the Runtime's chat backend (None: no adapter)."""
    try:
        version = AdapterStore(settings).active()
    except MemexError:
        return None
    return str(settings.adapters_dir / version / "adapter.gguf") if version else None


def active_merged_model_path(settings: Settings) -> str | None:
    """The active adapter merged into the base GGUF, when one was built for it."""
    try:
        version = AdapterStore(settings).active()
    except MemexError:
        return None
    if not version:
        return None
    merged = settings.adapters_dir / version / "merged.gguf"
    return str(merged) if merged.exists() else None


@dataclass(frozen=True)
class Served:
    """What the chat backend loads: a model file and an optional runtime LoRA."""

    model_path: str  # "" = settings.model_path (the bundled model when that is empty too)
    adapter_path: str = ""
    version: str | None = None


def served_model(settings: Settings) -> Served:
    """settings.adapter_path wins; else the active adapter, merged when `SERVE_MERGED` and built
    for the configured base, else as a runtime LoRA; else the plain base model."""
    if settings.adapter_path:
        return Served(settings.model_path, settings.adapter_path)
    try:
        store = AdapterStore(settings)
        version = store.active()
    except MemexError:
        return Served(settings.model_path)
    if not version:
        return Served(settings.model_path)
    folder = settings.adapters_dir / version
    merged = folder / "merged.gguf"
    if (
        SERVE_MERGED
        and settings.backend == "llamacpp"
        and merged.exists()
        and _same_base(store.metrics(version).get("base_model"), settings)
    ):
        return Served(str(merged), "", version)
    return Served(settings.model_path, str(folder / "adapter.gguf"), version)


def _same_base(trained_on: Any, settings: Settings) -> bool:
    """A merged model is stale once the user points memex at another base model."""
    try:
        return (
            bool(trained_on)
            and Path(str(trained_on)).resolve() == Path(base_model_path(settings)).resolve()
        )
    except MemexError:
        return False


def base_model_path(settings: Settings) -> str:
    """The base model file adapters are trained on and merged into (settings.model_path, else
    the bundled model); a missing model is a MemexError of kind "model"."""
    from inference.base import BackendError
    from inference.models import resolve_model

    try:
        return str(resolve_model(settings.model_path))
    except BackendError as exc:
        raise MemexError(str(exc), kind="model") from exc
