"""`memex mcp` through the resident service (both ends): the store's one owner runs the tools.

Client (the `memex mcp` process): `ServiceEngine` sends each tool call as one request,
`{"op": "mcp", "tool", "args", "version", "fingerprint"}`. The service is found or started as
the CLI does (MEMEX_SERVICE_AUTOSTART, a restart for a client of another version or settings);
when none can run, this process's own Runtime does the work, opened then and closed again as
soon as a service answers (one writer).

Service: `serve_mcp` answers `{"t": "result", "value"}` or `{"t": "error", "error", "kind"}` (or
"restart", as for "run"). The tool runs on the warm Runtime with the same code the MCP process
would run (app/mcp/tools.py), and its event is written here, by the store's one writer. A
locked vault is the tool's error, in the same sentence.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.service import client, protocol
from app.service.paths import service_version, settings_fingerprint
from app.service.route import autostart_enabled
from app.service.runner import Cancel

if TYPE_CHECKING:
    from app.mcp.engine import MemoryEngine
    from app.service.server import Service
    from app.settings import Settings

log = logging.getLogger(__name__)


class _NoService(Exception):
    """No service runs, and none can start: the tool runs in this process."""


class ServiceEngine:
    """MemoryEngine that forwards every tool to the service, else runs it in this process."""

    def __init__(self, home: Path, local: Callable[[], MemoryEngine]) -> None:
        self.home = Path(home).expanduser().absolute()  # the service's socket and lock live here
        self._make_local = local
        self._local: MemoryEngine | None = None
        self._guard = threading.Lock()  # guards _local (tools run in worker threads)
        # A service that could not start (see service.log) is not retried on every call.
        self._autostart = autostart_enabled()
        self.last_route = "none"

    def call(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        try:
            result = self._forward(tool, dict(args))
        except _NoService:
            self.last_route = "process"
            return self._local_engine().call(tool, args)
        self.last_route = "service"
        return result

    def _forward(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        for _attempt in range(2):
            sock = client.ensure_service(self.home, autostart=self._autostart)
            if sock is None:
                self._autostart = False
                raise _NoService
            self._close_local()  # a service answers now: it is the store's one writer
            with sock:
                try:
                    protocol.send(sock, _request(tool, args))
                    frame = protocol.recv(sock)
                except (OSError, protocol.ProtocolError):
                    frame = None
            if frame is None:
                raise client.ServiceCallError(client.DIED, "service_unavailable", 1)
            kind = frame.get("t")
            if kind == "result":
                value = frame.get("value")
                return value if isinstance(value, dict) else {}
            if kind == "error":
                if frame.get("kind") == "protocol":  # an older service without MCP: replace it
                    client.stop(self.home, wait=True)
                    continue
                raise client.ServiceCallError(
                    str(frame.get("error") or "memex failed."), str(frame.get("kind", "error")), 1
                )
            if kind != "restart" or not client.wait_stopped(self.home):
                raise client.ServiceCallError(client.DIED, "service_unavailable", 1)
        raise _NoService

    def _local_engine(self) -> MemoryEngine:
        with self._guard:
            if self._local is None:
                log.info("no memex service can run: the MCP tools run in this process")
                self._local = self._make_local()
            return self._local

    def _close_local(self) -> None:
        with self._guard:
            local, self._local = self._local, None
        if local is not None:
            local.close()

    def close(self) -> None:
        self._close_local()


def _request(tool: str, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "op": "mcp",
        "tool": tool,
        "args": args,
        "version": service_version(),
        "fingerprint": settings_fingerprint(),
    }


def mcp_engine(settings: Settings, *, prefer_service: bool = True) -> MemoryEngine:
    """The engine `memex mcp` serves: the service's client unless MEMEX_NO_SERVICE=1 (or the
    caller has a reason to keep the store here), with this process's own Runtime, opened only
    when no service can run, behind it."""
    from app.mcp.engine import open_engine
    from app.service.paths import service_disabled

    if not prefer_service or service_disabled():
        return open_engine(settings)
    return ServiceEngine(settings.home, lambda: open_engine(settings))


# -- the service's end ------------------------------------------------------------------
def admitted(service: Service, conn: socket.socket, request: dict[str, Any]) -> bool:
    """Whether this service may answer the request (the "run" rule: same version, and for a
    standalone service the same settings); otherwise the client is told why."""
    skew = request.get("version") != service.version
    if service.hosted_by != "service":
        if not skew:
            return True
        protocol.send(
            conn,
            {
                "t": "error",
                "kind": "service_version",
                "error": f"The {service.hosted_by} runs memex {service.version}; "
                "restart it to use this version.",
            },
        )
        return False
    if skew or request.get("fingerprint") != service.fingerprint:
        protocol.send(conn, {"t": "restart", "version": service.version})
        service.stop(wait=False)  # finish what runs, then make way for a fresh service
        return False
    return True


def serve_mcp(service: Service, conn: socket.socket, request: dict[str, Any]) -> None:
    if not admitted(service, conn, request):
        return
    from app.mcp.engine import RuntimeEngine
    from app.mcp.tools import error_sentence

    tool = str(request.get("tool") or "")
    args = request.get("args")
    cancel = Cancel()
    reply: dict[str, Any]
    with service.tracked(cancel):
        service.holder.store_ready.wait(60)
        engine = RuntimeEngine(hosted=service.holder.get, via="service")
        try:
            cancel.arm()
            try:
                value = engine.call(tool, args if isinstance(args, dict) else {})
            finally:
                cancel.disarm()
        except KeyboardInterrupt:  # the service is stopping and this call ran past the drain
            reply = {"t": "error", "error": "The memex service stopped.", "kind": "interrupted"}
        except Exception as exc:  # noqa: BLE001 - every failure is the tool's one sentence
            message, kind = error_sentence(exc)
            reply = {"t": "error", "error": message, "kind": kind}
        else:
            reply = {"t": "result", "value": value}
    protocol.send(conn, reply)
