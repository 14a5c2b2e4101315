"""The one seam between the MCP server and whatever does the memory work.

`open_engine` returns "the thing that does remember/search/ask/forget/profile". Today that is
an in-process Runtime; when the resident service runs, this is the only place that has to
hand back its client instead. Every method returns JSON-ready values (what MCP sends).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from app.runtime import Runtime
    from app.settings import Settings


class MemoryEngine(Protocol):
    def remember(self, text: str, *, at: str | None = None, source: str | None = None) -> dict[str, Any]: ...

    def search(self, query: str, k: int = 5) -> list[dict[str, Any]]: ...

    def ask(self, question: str) -> dict[str, Any]: ...

    def forget(self, memory_id: str) -> int: ...

    def profile(self) -> list[dict[str, Any]]: ...

    def recent(self, limit: int = 20) -> list[dict[str, Any]]: ...

    def record(self, tool: str, *, ok: bool, error_kind: str = "") -> None:
        """Note that a tool ran (its name and outcome, never its arguments or results)."""
        ...

    def close(self) -> None: ...


def _memory_json(m: Any) -> dict[str, Any]:
    return {"id": m.id, "text": m.text, "kind": m.kind, "source": m.source,
            "created_at": m.created_at.isoformat(), "at": m.at.isoformat() if m.at else None}


class RuntimeEngine:
    """Does the work in this process through Runtime (one call at a time: the model and the
    embedder are not shared between threads)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()

    def remember(self, text: str, *, at: str | None = None, source: str | None = None) -> dict[str, Any]:
        from memory.store import parse_at

        with self._lock:
            mem, created = self.runtime.remember(text, source=source or "mcp", at=parse_at(at))
        return {"id": mem.id, "created": created}

    def search(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        with self._lock:
            hits = self.runtime.memory.search(query, k)
        return [{k_: h.to_json()[k_] for k_ in ("id", "text", "score", "source", "created_at", "at")}
                for h in hits]

    def ask(self, question: str) -> dict[str, Any]:
        with self._lock:
            answer = self.runtime.ask(question)
        out = answer.to_json()
        return {"answer": out["answer"], "citations": out["citations"], "abstained": out["abstained"]}

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
            records.log_event(conn, "mcp_call", tool=tool, ok=ok, error=error_kind or None)

    def close(self) -> None:
        with self._lock:
            self.runtime.close()


def open_engine(settings: Settings) -> MemoryEngine:
    """The memory engine for `settings` (in-process today; the service client later)."""
    from app.runtime import Runtime

    return RuntimeEngine(Runtime(settings))
