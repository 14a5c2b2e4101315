"""Hosting the service inside another process that already owns a Runtime (the desktop app)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.service import client
from app.service.lock import lock_held
from app.service.paths import lock_path
from app.service.server import Service

if TYPE_CHECKING:
    from app.runtime import Runtime


def host_service(
    runtime: Runtime, *, hosted_by: str = "desktop app", open_store: Callable[[], Any] | None = None
) -> Service | None:
    """Serve CLI commands from `runtime` while this process runs (None: another host keeps it).

    A standalone service is asked to stop first (after its requests in flight), so one
    process writes the store. Blocks while it drains: call it off the GUI thread.
    """
    home = runtime.settings.home
    if lock_held(lock_path(home)):
        client.stop(home, wait=True)
    service = Service(home, runtime=runtime, idle_s=None, hosted_by=hosted_by, opener=open_store)
    return service if service.start() else None
