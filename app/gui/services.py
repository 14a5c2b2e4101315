"""The GUI's door to the Runtime: every call the app makes to memex goes through here.

`Services` owns the Runtime and the job runner. Its methods are plain functions that run on
pool threads (never on the GUI thread) and return plain data. Optional features built by
other parts of memex are probed without importing heavy libraries, so a screen can say
plainly what is not installed instead of showing a dead button.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from app.gui.confirm import ConfirmBroker
from app.gui.workers import JobContext, JobRunner

if TYPE_CHECKING:
    from app.runtime import Runtime
    from memory import MemoryStore


# Hosts the memex service on a Runtime while the app is open (app.service.host.host_service),
# handed in by `memex gui`: the service runs CLI commands, one of which opens this app, so
# the GUI is given the host rather than importing it. Returns the service (None: another host).
ServiceHost = Callable[..., Any]


@dataclass(frozen=True)
class Feature:
    """Whether an optional part of memex can be used, and if not, what to do about it."""

    available: bool
    reason: str = ""


def module_exists(name: str) -> bool:
    """Whether a module is installed, without importing it or its parent packages.

    (find_spec("memory.inbox") would import `memory`, and with it SQLAlchemy, before the
    first paint; here only the top-level package is located and the rest is looked up on disk.)
    """
    top, _, rest = name.partition(".")
    if top in sys.modules and not rest:
        return True
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if not rest:
        return True
    for base in spec.submodule_search_locations or ():
        path = Path(base, *rest.split("."))
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return True
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

    def __init__(
        self, runtime: Runtime, parent: QObject | None = None, *, host: ServiceHost | None = None
    ) -> None:
        super().__init__(parent)
        self.runtime = runtime
        self._host = host
        self.jobs = JobRunner(self)
        self._open_lock = threading.Lock()
        self._agent: Any = None
        self._service: Any = None  # the resident memex service, hosted here while the app is open
        self.confirms = ConfirmBroker(self)  # first-fill questions from browser hosts

    @property
    def settings(self) -> Any:
        return self.runtime.settings

    # -- the memory store, opened once, from whichever worker gets there first ----------
    def memory(self) -> MemoryStore:
        with self._open_lock:
            return self.runtime.memory

    def apply_settings(self, **changes: Any) -> Any:
        """Save settings (worker thread) and make the next answer use them."""
        new = self.settings.save(**changes)
        self.runtime.settings = new
        self.reload_backend()
        return new

    def reload_backend(self) -> None:
        """Drop the loaded model so the next answer loads the chosen model and adapter."""
        self.runtime.unload_model()

    # -- feature probes (cheap, GUI thread safe: no heavy imports) ----------------------
    def ask_feature(self) -> Feature:
        if callable(getattr(self.runtime, "ask_stream", None)):
            return Feature(True)
        return Feature(
            False,
            "Answering questions is not installed in this build yet "
            "(the Runtime has no ask_stream). Your memories are still searchable.",
        )

    def inbox_feature(self) -> Feature:
        if module_exists("memory.inbox"):
            return Feature(True)
        return Feature(
            False,
            "The review inbox is not installed in this build yet. Facts found in "
            "new memories will wait here for you to accept, edit or reject.",
        )

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
            return Feature(
                False, "The browser bridge needs the bridge extra: pip install 'memex[bridge]'."
            )
        return Feature(True)

    def moe_feature(self) -> Feature:
        if not module_exists("inference.moe") or not module_exists("inference.moe.backend"):
            return Feature(False, "The MoE offloading engine is not installed in this build yet.")
        return Feature(True)

    # -- the bridge agent: native hosts ask the running app instead of opening the store ---
    def start_bridge_agent(self) -> str:
        """Serve profile/draft/confirm requests to browser hosts while the app runs ('' if not
        possible)."""
        if self._agent is not None or not self.bridge_feature().available:
            return ""
        try:
            from app.bridge.access import RuntimeAccess
            from app.bridge.agent import AgentServer, AgentUnavailable

            self._agent = AgentServer(
                self.settings, RuntimeAccess(self.runtime), confirmer=self.confirms.ask
            ).start()
        except (
            ImportError,
            OSError,
            AgentUnavailable,
        ) as exc:  # another app serves it, or no sockets
            self._agent = None
            return str(exc)
        return str(self._agent.path)

    def stop_bridge_agent(self) -> None:
        if self._agent is not None:
            self._agent.close()
            self._agent = None

    # -- the memex service: CLI commands, the bridge host and `memex serve` use this app's Runtime
    def start_service(self) -> None:
        """Host the service while the app is open (off the GUI thread: a running one drains
        first). Without a host handed in (tests, screenshots) the CLI keeps its own route."""
        host_service = self._host
        if host_service is None:
            return

        def host() -> None:
            try:
                self._service = host_service(self.runtime, open_store=self.memory)
            except OSError as exc:  # no Unix sockets here: the CLI works in-process
                sys.stderr.write(f"memex: the app does not host the service ({exc}).\n")

        threading.Thread(target=host, name="memex-service-host", daemon=True).start()

    def stop_service(self) -> None:
        if self._service is not None:
            self._service.stop(wait=True)
            self._service = None

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

        self.jobs.start(
            work,
            name="warm-up",
            on_done=self.warmed.emit,
            on_error=lambda msg: self.warmed.emit({"error": msg}),
        )
