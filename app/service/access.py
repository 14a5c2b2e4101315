"""The bridge host's memory through the resident service, when one runs.

The host is a process of its own (the browser starts it). With a service running, profile
reads and drafts are answered there, by the one process that owns the store and the warm
model; otherwise the host keeps its own route (the desktop app's agent, or the store).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from app.service import client
from app.service.paths import service_disabled


class _Access(Protocol):
    def profile(self) -> dict[str, str]: ...
    def draft(self, question: str) -> dict[str, Any]: ...


class ServiceAccess:
    """MemoryAccess (app/bridge/service.py) that prefers the running service."""

    def __init__(self, home: Path, fallback: _Access) -> None:
        self.home = home
        self.fallback = fallback
        self.last_route = "none"

    def _service_up(self) -> bool:
        return not service_disabled() and client.connect_ok(self.home)

    def profile(self) -> dict[str, str]:
        if self._service_up():
            try:
                result = client.call("profile", ["show"], home=self.home, autostart=False)
            except client.ServiceCallError:
                pass
            else:
                self.last_route = "service"
                return {str(f["key"]): str(f["value"]) for f in result.get("fields", [])}
        self.last_route = "fallback"
        return self.fallback.profile()

    def draft(self, question: str) -> dict[str, Any]:
        if self._service_up():
            try:
                result = client.call("ask", [question], home=self.home, autostart=False)
            except client.ServiceCallError:
                pass  # the host's own route answers (and says what is wrong) instead
            else:
                self.last_route = "service"
                abstained = bool(result.get("abstained", False))
                return {
                    "text": "" if abstained else str(result.get("answer") or ""),
                    "abstained": abstained,
                    "citations": [{"id": c.get("id")} for c in result.get("citations", [])],
                }
        self.last_route = "fallback"
        return self.fallback.draft(question)

    def close(self) -> None:
        close = getattr(self.fallback, "close", None)
        if callable(close):
            close()
