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

import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
# Version files sealed with the vault's key when it is on: the training set is memory text,
# and the weights were fitted to it (a LoRA can be made to recite what it learned).
SEALED_FILES = ("dataset.jsonl", "adapter.gguf", "merged.gguf")


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

    def add(self, files: dict[str, Path], metrics: dict[str, Any], key: bytes | None = None) -> str:
        """Copy a finished run into the next version folder (temp folder + rename).

        With `key` (the vault is on) the files in SEALED_FILES are sealed on the way in.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        existing = [int(v[1:]) for v in self.versions() if v[1:].isdigit()]
        version = f"v{(max(existing) + 1 if existing else 1):04d}"
        tmp = self.root / f".{version}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            for name, src in files.items():
                if src.is_dir() and key is not None:  # the peft adapter: weights too
                    for f in src.rglob("*"):
                        if f.is_file():
                            write_sealed_copy(f, tmp / name / f.relative_to(src), key)
                elif src.is_dir():
                    shutil.copytree(src, tmp / name)
                elif key is not None and name in SEALED_FILES:
                    write_sealed_copy(src, tmp / name, key)
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


def write_sealed_copy(src: Path, dst: Path, key: bytes) -> None:
    from memory.vault import write_sealed

    write_sealed(dst, key, src.read_bytes())


def seal_at_rest(settings: Settings, key: bytes) -> int:
    """Seal what earlier versions left in the clear (training sets, weights) and drop a
    plaintext work folder; for turning the vault on. Returns how many files were sealed.

    Each file is replaced atomically by its sealed copy, then its old blocks are zeroed
    through a descriptor kept open, so a crash leaves the plaintext or the sealed file."""
    from memory.vault import is_sealed, write_sealed
    from memory.vault_db import _zero_fill

    root = settings.adapters_dir
    if not root.exists():
        return 0
    shutil.rmtree(root / ".work", ignore_errors=True)  # a run's plaintext training set
    sealed = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("v")):
        files = [folder / n for n in SEALED_FILES] + sorted((folder / "adapter_hf").rglob("*"))
        for f in files:
            if not f.is_file() or f.is_symlink() or is_sealed(f):
                continue
            fd = os.open(f, os.O_RDWR)
            try:
                write_sealed(f, key, os.pread(fd, os.fstat(fd).st_size, 0))
                _zero_fill(fd)
            finally:
                os.close(fd)
            sealed += 1
    return sealed


def ram_copy(settings: Settings, path: Path, key: bytes | None) -> Path:
    """`path` when it is not sealed; else its decrypted copy in a private in-memory folder
    outside the data folder (owner-only), for llama.cpp to load. The caller deletes it."""
    from memory.errors import MemoryStoreError
    from memory.vault import is_sealed, private_ram_dir, read_sealed

    if not is_sealed(path):
        return path
    if key is None:
        raise MemexError(
            "memex is locked: the adapter is encrypted; unlock memex first.", kind="locked"
        )
    tag = hashlib.sha256(str(settings.home.resolve()).encode()).hexdigest()[:12]
    folder = private_ram_dir(f"memex-models-{tag}")
    if folder is None:
        raise MemexError(
            "An encrypted adapter needs private in-memory storage ($XDG_RUNTIME_DIR "
            "or /dev/shm) to be loaded from, and this machine has neither.",
            kind="vault",
        )
    try:
        data = read_sealed(path, key)
    except MemoryStoreError as exc:
        raise MemexError(str(exc), kind=getattr(exc, "kind", "vault")) from exc
    out = folder / f"{path.parent.name}-{os.getpid()}-{secrets.token_hex(4)}-{path.name}"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return out


@contextmanager
def loadable(
    settings: Settings, served: Served, key: Callable[[], bytes | None]
) -> Iterator[Served]:
    """`served` with sealed files swapped for in-memory copies, removed once the block ends
    (llama.cpp has read or mapped them by then). `key` is asked only when a file is sealed."""
    from memory.vault import is_sealed

    paths = [p for p in (served.model_path, served.adapter_path) if p and is_sealed(Path(p))]
    if not paths:
        yield served
        return
    k = key()
    copies = {p: ram_copy(settings, Path(p), k) for p in paths}
    try:
        yield Served(
            str(copies.get(served.model_path, served.model_path)),
            str(copies.get(served.adapter_path, served.adapter_path)),
            served.version,
        )
    finally:
        for c in copies.values():
            c.unlink(missing_ok=True)


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
