"""The resident service: an owner-only Unix socket in MEMEX_HOME, one thread per request.

`Service.start()` takes the lock (one service, one writer per data folder), removes a socket
left by a killed predecessor, and listens. Requests run concurrently against one warm
Runtime (the store and the model serialize themselves). The service stops when asked, when
a client of another version or with other settings needs a fresh one, and after
`service_idle_minutes` without a request.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.service import protocol
from app.service.holder import RuntimeHolder
from app.service.jobs import journaled
from app.service.lock import ServiceLock
from app.service.paths import (
    lock_path,
    service_version,
    settings_fingerprint,
    short_address,
    socket_path,
)
from app.service.runner import Cancel, patch_relative_paths, run_argv
from app.service.streams import CURRENT, RequestIO, install_routers

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)
DRAIN_S = 30.0  # how long a stop waits for requests in flight before cancelling them


def bind_unix(path: Path) -> socket.socket:
    """A listening socket at `path`, mode 0600 from the start (the umask covers the bind)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        with short_address(path) as address:
            sock.bind(address)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(64)
    return sock


def peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class Service:
    def __init__(
        self,
        home: Path,
        *,
        runtime: Runtime | None = None,
        idle_s: float | None = None,
        hosted_by: str = "service",
        opener: Callable[[], Any] | None = None,
    ) -> None:
        self.home = home
        self.holder = RuntimeHolder(home, runtime, opener)
        self.idle_s = idle_s
        self.hosted_by = hosted_by
        self.version = service_version()
        self.fingerprint = settings_fingerprint()
        self._lock = ServiceLock(lock_path(home))
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._state = threading.Lock()
        self._in_flight: dict[int, Cancel] = {}
        self._requests = 0
        self._last_active = time.monotonic()
        self._started_at = time.time()
        self._thread: threading.Thread | None = None

    # -- life cycle --------------------------------------------------------------------
    def start(self) -> bool:
        """Take the lock and listen; False when another live service owns this folder."""
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(self.home, 0o700)
        except OSError:
            pass
        if not self._lock.acquire(self.version):
            return False
        path = socket_path(self.home)
        try:
            path.unlink(missing_ok=True)  # a stale socket: its owner died without the lock
            self._listener = bind_unix(path)
        except OSError:
            self._lock.release()
            raise
        install_routers()
        patch_relative_paths()
        self._listener.settimeout(0.25)
        self._thread = threading.Thread(target=self._accept_loop, name="memex-service", daemon=True)
        self._thread.start()
        log.info("memex service %s listening on %s (pid %d)", self.version, path, os.getpid())
        return True

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def stop(self, wait: bool = True) -> None:
        self._stopping.set()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._stopped.wait(DRAIN_S + 10)

    def status(self) -> protocol.ServiceStatus:
        with self._state:
            in_flight, requests = len(self._in_flight), self._requests
        return {
            "pid": os.getpid(),
            "version": self.version,
            "home": str(self.home),
            "started_at": self._started_at,
            "uptime_s": round(time.time() - self._started_at, 3),
            "in_flight": in_flight,
            "requests": requests,
            "idle_minutes": (self.idle_s or 0) / 60,
            "hosted_by": self.hosted_by,
        }

    def _accept_loop(self) -> None:
        assert self._listener is not None
        try:
            while not self._stopping.is_set():
                try:
                    conn, _ = self._listener.accept()
                except TimeoutError:
                    self._check_idle()
                    continue
                except OSError:
                    break
                threading.Thread(
                    target=self._serve_conn, args=(conn,), name="memex-request", daemon=True
                ).start()
        finally:
            self._shutdown()

    def _check_idle(self) -> None:
        if not self.idle_s:
            return
        with self._state:
            idle = not self._in_flight and time.monotonic() - self._last_active > self.idle_s
        if idle:
            log.info("idle for %.0f s: stopping", self.idle_s)
            self._stopping.set()

    def _shutdown(self) -> None:
        # stop taking requests first, so a new client starts a fresh service instead
        if self._listener is not None:
            self._listener.close()
        socket_path(self.home).unlink(missing_ok=True)
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline and self._busy():
            time.sleep(0.05)
        with self._state:
            for cancel in self._in_flight.values():
                cancel.fire()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self._busy():
            time.sleep(0.05)
        try:
            self.holder.close()
        except Exception:  # noqa: BLE001 - a failing close must not keep the lock (and the folder)
            log.warning("closing the Runtime failed", exc_info=True)
        finally:
            self._lock.release()
            self._stopped.set()
        log.info("memex service stopped")

    def _busy(self) -> bool:
        with self._state:
            return bool(self._in_flight)

    # -- one connection ----------------------------------------------------------------
    def _serve_conn(self, conn: socket.socket) -> None:
        with conn:
            try:
                if peer_uid(conn) != os.getuid():
                    protocol.send(
                        conn,
                        {
                            "t": "error",
                            "error": "This memex service belongs to another user.",
                            "kind": "permission",
                        },
                    )
                    return
                request = protocol.recv(conn)
                if request is None:
                    return
                op = request.get("op")
                if op == "status":
                    protocol.send(conn, {"t": "status", **self.status()})
                elif op == "stop" and self.hosted_by != "service":
                    protocol.send(
                        conn,
                        {
                            "t": "error",
                            "kind": "service_hosted",
                            "error": f"The {self.hosted_by} hosts the memex service; "
                            "close it to stop the service.",
                        },
                    )
                elif op == "stop":
                    protocol.send(conn, {"t": "stopping"})
                    self._stopping.set()
                elif op == "run":
                    self._run(conn, request)
                elif op == "mcp":
                    from app.service.mcp_calls import serve_mcp

                    serve_mcp(self, conn, request)
                else:
                    protocol.send(
                        conn,
                        {"t": "error", "error": f"Unknown request {op!r}.", "kind": "protocol"},
                    )
            except (OSError, protocol.ProtocolError) as exc:
                log.debug("connection dropped: %s", exc)

    def _run(self, conn: socket.socket, request: dict[str, Any]) -> None:
        skew = request.get("version") != self.version
        if self.hosted_by != "service":
            if skew:  # the app keeps its Runtime: a second writer must not start beside it
                protocol.send(
                    conn,
                    {
                        "t": "error",
                        "kind": "service_version",
                        "error": f"The {self.hosted_by} runs memex {self.version}; "
                        "restart it to use this version.",
                    },
                )
                return
        elif skew or request.get("fingerprint") != self.fingerprint:
            # a newer client (or other MEMEX_* settings): finish what runs, then make way
            protocol.send(conn, {"t": "restart", "version": self.version})
            self._stopping.set()
            return
        argv = [str(a) for a in request.get("argv", [])]
        tty = request.get("tty") or {}
        flags: protocol.TtyFlags = {
            "stdin": bool(tty.get("stdin")),
            "stdout": bool(tty.get("stdout")),
            "stderr": bool(tty.get("stderr")),
        }
        rio = RequestIO(conn, flags)
        cancel = Cancel()
        key = threading.get_ident()
        with self._state:
            self._in_flight[key] = cancel
            self._requests += 1
        reader = threading.Thread(target=self._read_client, args=(conn, rio, cancel), daemon=True)
        reader.start()
        token = CURRENT.set(rio)
        try:
            self.holder.store_ready.wait(60)
            cwd = str(request.get("cwd") or "/")
            with journaled(self.home, argv, cwd, self.hosted_by) as job:
                code = run_argv(argv, self.holder.get, cwd, cancel)
                if job is not None:
                    job.finish(code)
        finally:
            CURRENT.reset(token)
            with self._state:
                self._in_flight.pop(key, None)
                self._last_active = time.monotonic()
                idle = not self._in_flight
            if idle:
                self.holder.release_retired()
        rio.send({"t": "exit", "code": code})

    @contextmanager
    def tracked(self, cancel: Cancel) -> Iterator[None]:
        """Count one request in flight (a stop drains it, then cancels it; idle time and the
        release of retired Runtimes wait for it), as `_run` does for a command."""
        key = threading.get_ident()
        with self._state:
            self._in_flight[key] = cancel
            self._requests += 1
        try:
            yield
        finally:
            with self._state:
                self._in_flight.pop(key, None)
                self._last_active = time.monotonic()
                idle = not self._in_flight
            if idle:
                self.holder.release_retired()

    def _read_client(self, conn: socket.socket, rio: RequestIO, cancel: Cancel) -> None:
        while True:
            try:
                message = protocol.recv(conn)
            except (OSError, protocol.ProtocolError):
                message = None
            if message is None:  # the client went away: stop its command like a Ctrl-C would
                rio.gone.set()
                cancel.fire()
                return
            if message.get("op") == "stdin":
                rio.lines.put(str(message.get("data") or ""))
            elif message.get("op") == "cancel":
                cancel.fire()
