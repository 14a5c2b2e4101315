"""How the native host reaches memory: through the running app, or straight from the store.

When the desktop app runs, it serves an owner-only Unix socket (see agent.py) and the host
asks it, so one process owns the store and its models. Without the app the host opens the
store itself: profile reads are plain SQLite reads (WAL), safe next to other processes. The
choice is made per request, so starting or quitting the app while a browser is open works.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.runtime import Runtime
    from app.settings import Settings

log = logging.getLogger(__name__)


def runtime_profile(runtime: Runtime) -> dict[str, str]:
    return {f.key: f.value for f in runtime.memory.profile()}


def runtime_draft(runtime: Runtime, question: str) -> dict[str, Any]:
    """A memory-grounded draft via Runtime.ask; falls back to the best matching memories."""
    ask = getattr(runtime, "ask", None)
    if callable(ask):
        result = ask(question)  # the form's question as asked: it is also the retrieval query
        text = getattr(result, "answer", None)
        if text is None and isinstance(result, dict):
            text = result.get("answer")
        cites = getattr(result, "citations", None)
        if cites is None and isinstance(result, dict):
            cites = result.get("citations")
        abstained = bool(getattr(result, "abstained", False))
        # an abstention is not a draft: show nothing rather than "I don't know" in a form
        return {
            "text": "" if abstained else str(text or ""),
            "abstained": abstained,
            "citations": [_cite(c) for c in (cites or [])],
        }
    hits = runtime.memory.search(question, k=3)
    return {"text": "\n".join(h.text for h in hits), "citations": [{"id": h.id} for h in hits]}


def _cite(c: Any) -> dict[str, Any]:
    if isinstance(c, dict):
        return {"id": c.get("id")}
    return {"id": getattr(c, "id", None)}


class RuntimeAccess:
    """Memory through a Runtime this process owns (the app's, or one the host opens)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()  # the store and the model are used by one request at a time

    def profile(self) -> dict[str, str]:
        with self._lock:
            return runtime_profile(self.runtime)

    def draft(self, question: str) -> dict[str, Any]:
        with self._lock:
            return runtime_draft(self.runtime, question)


class DirectAccess:
    """Opens the store lazily in this process (the host without a running app)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._inner: RuntimeAccess | None = None

    def _access(self) -> RuntimeAccess:
        if self._inner is None:
            from app.runtime import Runtime

            self._inner = RuntimeAccess(Runtime(self.settings))
        return self._inner

    def profile(self) -> dict[str, str]:
        return self._access().profile()

    def draft(self, question: str) -> dict[str, Any]:
        return self._access().draft(question)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.runtime.close()
            self._inner = None


class AutoAccess:
    """Ask the running app if its socket answers; otherwise read the store directly."""

    def __init__(self, settings: Settings) -> None:
        from app.bridge.agent import AgentClient, agent_socket_path

        self.client = AgentClient(agent_socket_path(settings))
        self.direct = DirectAccess(settings)
        self.last_route = "none"

    def _call(self, op: str, **args: Any) -> Any:
        from app.bridge.agent import AgentUnavailable

        try:
            result = self.client.call(op, **args)
            self.last_route = "app"
            return result
        except AgentUnavailable as exc:
            log.debug("app not reachable (%s); using the store directly", exc)
        self.last_route = "direct"
        return getattr(self.direct, op)(**args)

    def profile(self) -> dict[str, str]:
        return dict(self._call("profile"))

    def draft(self, question: str) -> dict[str, Any]:
        return dict(self._call("draft", question=question))

    def close(self) -> None:
        self.direct.close()
