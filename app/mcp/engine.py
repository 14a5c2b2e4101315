"""The one seam between the MCP server and whatever does the memory work.

A MemoryEngine is "the thing that runs the tools". `open_engine` gives this process's own
Runtime; `memex mcp` serves the resident service's client instead when a service runs or can
start, the rule the CLI follows (app/service/mcp_calls.py: the service sits above this
front-end, so the choice is the command's). Every result is JSON-ready (what MCP sends), the
same from both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from app.runtime import Runtime
    from app.settings import Settings


class MemoryEngine(Protocol):
    def call(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Run one tool (app/mcp/tools.py) and record it by name and outcome, never its values."""
        ...

    def close(self) -> None: ...


def _memory_json(m: Any) -> dict[str, Any]:
    return {
        "id": m.id,
        "text": m.text,
        "kind": m.kind,
        "source": m.source,
        "created_at": m.created_at.isoformat(),
        "at": m.at.isoformat() if m.at else None,
    }


class RuntimeEngine:
    """Does the work through a Runtime: this process's own (one call at a time: the model and
    the embedder are not shared between its threads), or, inside the service, its warm shared
    one, fetched per call (`hosted`: the service's getter, which may say the vault is locked)."""

    def __init__(
        self,
        runtime: Runtime | None = None,
        *,
        hosted: Callable[[], Runtime] | None = None,
        via: str = "process",
    ) -> None:
        if (runtime is None) == (hosted is None):
            raise TypeError("RuntimeEngine needs a runtime or a hosted getter, not both.")
        self._own = runtime
        self._hosted = hosted
        self.via = via  # recorded with each event: which process did the work
        self._lock = threading.Lock()

    @property
    def runtime(self) -> Runtime:
        if self._hosted is not None:
            return self._hosted()
        assert self._own is not None
        return self._own

    def call(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        from app.mcp.tools import run_tool

        return run_tool(self, tool, args)

    def remember(
        self, text: str, *, at: str | None = None, source: str | None = None
    ) -> dict[str, Any]:
        from memory.store import parse_at

        with self._lock:
            mem, created = self.runtime.remember(text, source=source or "mcp", at=parse_at(at))
        return {"id": mem.id, "created": created}

    def search(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        with self._lock:
            hits = self.runtime.memory.search(query, k)
        keys = ("id", "text", "score", "source", "created_at", "at")
        return [{key: h.to_json()[key] for key in keys} for h in hits]

    def ask(self, question: str) -> dict[str, Any]:
        with self._lock:
            answer = self.runtime.ask(question)
        out = answer.to_json()
        return {key: out[key] for key in ("answer", "citations", "abstained")}

    def forget(self, memory_id: str) -> int:
        from memory import NotFound

        with self._lock:
            if self.runtime.memory.get(memory_id) is None:
                raise NotFound(f"No memory has the id {memory_id!r}.")
            return self.runtime.forget([memory_id])

    def profile(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self.runtime.memory.profile()]

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._lock:
            return [_memory_json(m) for m in self.runtime.memory.list(limit=limit)]

    def record(self, tool: str, *, ok: bool, error_kind: str = "") -> None:
        from memory import records

        with self._lock, self.runtime.memory.write() as conn:
            records.log_event(
                conn, "mcp_call", tool=tool, ok=ok, error=error_kind or None, via=self.via
            )

    def close(self) -> None:
        if self._own is None:  # the service's Runtime is the service's to close
            return
        with self._lock:
            self._own.close()


def open_engine(settings: Settings) -> MemoryEngine:
    """The in-process engine for `settings` (its Runtime opens the store on the first tool)."""
    from app.runtime import Runtime

    return RuntimeEngine(Runtime(settings))
