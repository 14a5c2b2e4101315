"""The GUI's door to the Runtime: every call the app makes to memex goes through here.

`Services` owns the Runtime and the job runner. Its methods are plain functions that run on
pool threads (never on the GUI thread) and return plain data. Optional features built by
other parts of memex are probed without importing heavy libraries, so a screen can say
plainly what is not installed instead of showing a dead button.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from app.gui.workers import JobContext, JobRunner

if TYPE_CHECKING:
    from app.runtime import Runtime
    from memory import MemoryStore


@dataclass(frozen=True)
class Feature:
    """Whether an optional part of memex can be used, and if not, what to do about it."""

    available: bool
    reason: str = ""


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def optional_module(name: str) -> Any | None:
    """Import a light app module if it exists (the parents of heavy libraries stay lazy)."""
    if not module_exists(name):
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class Services(QObject):
    """Runtime + job runner. Signals tell every screen that stored data changed."""

    memories_changed = Signal()
    profile_changed = Signal()
    inbox_changed = Signal()
    adapters_changed = Signal()
    warmed = Signal(object)  # dict with what loaded (or an "error")
    generation_stats = Signal(object)  # {"tok_s": float, ...} after each streamed answer

    def __init__(self, runtime: "Runtime", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runtime = runtime
        self.jobs = JobRunner(self)
        self._open_lock = threading.Lock()

    @property
    def settings(self) -> Any:
        return self.runtime.settings

    # -- the memory store, opened once, from whichever worker gets there first ----------
    def memory(self) -> "MemoryStore":
        with self._open_lock:
            return self.runtime.memory

    def apply_settings(self, **changes: Any) -> Any:
        """Save settings (worker thread) and make the next answer use them."""
        new = self.settings.save(**changes)
        runtime = self.runtime
        old_backend = getattr(runtime, "_backend", None)
        runtime.settings = new
        if old_backend is not None:
            runtime._backend = None  # the next ask loads the newly chosen model
            old_backend.close()
        return new

    # -- feature probes (cheap, GUI thread safe: no heavy imports) ----------------------
    def ask_feature(self) -> Feature:
        if callable(getattr(self.runtime, "ask_stream", None)):
            return Feature(True)
        return Feature(False, "Answering questions is not installed in this build yet "
                              "(the Runtime has no ask_stream). Your memories are still searchable.")

    def inbox_feature(self) -> Feature:
        if module_exists("memory.inbox"):
            return Feature(True)
        return Feature(False, "The review inbox is not installed in this build yet. Facts found in "
                              "new memories will wait here for you to accept, edit or reject.")

    def training_feature(self) -> Feature:
        if optional_module("app.training") is None:
            return Feature(False, "Training is not installed in this build yet.")
        if not module_exists("peft"):
            return Feature(False, "Training needs the train extra: pip install 'memex[train]'.")
        return Feature(True)

    def bridge_feature(self) -> Feature:
        if not module_exists("app.bridge"):
            return Feature(False, "The browser bridge is not installed in this build yet.")
        if not module_exists("nacl"):
            return Feature(False, "The browser bridge needs the bridge extra: "
                                  "pip install 'memex[bridge]'.")
        return Feature(True)

    def moe_feature(self) -> Feature:
        if not module_exists("inference.moe") or not module_exists("inference.moe.backend"):
            return Feature(False, "The MoE offloading engine is not installed in this build yet.")
        return Feature(True)

    # -- warm-up: load heavy libraries after the first paint -----------------------------
    def warm_up(self, heavy: bool = True) -> None:
        """Open the store; with `heavy`, also load chromadb and the embedding model now."""

        def work(ctx: JobContext) -> dict[str, Any]:
            info: dict[str, Any] = {}
            store = self.memory()
            info["memories"] = store.count()
            if heavy and info["memories"]:
                try:  # one search loads chromadb and the embedder now, not on the first real search
                    store.search("warm up", k=1)
                except Exception as exc:  # noqa: BLE001 - a warm-up failure is reported, not fatal
                    info["search_error"] = str(exc)
            return info

        self.jobs.start(work, name="warm-up", on_done=self.warmed.emit,
                        on_error=lambda msg: self.warmed.emit({"error": msg}))
