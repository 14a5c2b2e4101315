"""Per-request terminals inside the service.

The service runs each command on its own thread with the process-wide sys.stdout, sys.stderr
and sys.stdin replaced once by routers: a write from a request thread becomes a frame to that
request's client, a read asks the client for one line. Threads that are not serving a
request (warm-up, model loading, library workers) write to the service log as before.
"""

from __future__ import annotations

import io
import queue
import socket
import sys
import threading
from contextvars import ContextVar
from typing import Any

from app.service import protocol
from app.service.protocol import TtyFlags


class ClientGone(Exception):
    """The client closed its connection (Ctrl-C twice, killed, or the terminal closed)."""


class RequestIO:
    """The terminal of one request: frames out, stdin lines in (fed by the connection reader)."""

    def __init__(self, conn: socket.socket, tty: TtyFlags) -> None:
        self.conn = conn
        self.tty = tty
        self._send_lock = threading.Lock()
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.gone = threading.Event()

    def send(self, message: dict[str, Any]) -> None:
        if self.gone.is_set():
            return  # nobody reads any more; the command is being cancelled
        with self._send_lock:
            try:
                protocol.send(self.conn, message)
            except (OSError, protocol.ProtocolError):
                self.gone.set()

    def write(self, stream: str, data: str) -> None:
        if data:
            self.send({"t": stream, "data": data})

    def readline(self) -> str:
        self.send({"t": "read"})
        while True:
            # poll so a cancel (an asynchronous KeyboardInterrupt) is seen while waiting
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.gone.is_set():
                    return ""
                continue
            return line or ""


CURRENT: ContextVar[RequestIO | None] = ContextVar("memex_request_io", default=None)


class _Router(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr / sys.stdin for the whole service process."""

    encoding = "utf-8"
    errors = "strict"

    def __init__(self, fallback: Any, stream: str) -> None:
        super().__init__()
        self._fallback = fallback
        self._stream = stream  # "out", "err" or "in"

    def _io(self) -> RequestIO | None:
        return CURRENT.get()

    def writable(self) -> bool:
        return self._stream != "in"

    def readable(self) -> bool:
        return self._stream == "in"

    def write(self, s: str) -> int:  # type: ignore[override]
        if not isinstance(s, str):
            raise TypeError("write() argument must be str")  # click probes for binary streams
        req = self._io()
        if req is None:
            return int(self._fallback.write(s) or 0) if self._fallback else len(s)
        req.write(self._stream, s)
        return len(s)

    def flush(self) -> None:
        if self._io() is None and self._fallback is not None:
            self._fallback.flush()

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        req = self._io()
        if req is None:  # not a request: the hosting process's own stdin
            return str(self._fallback.readline()) if self._fallback is not None else ""
        return req.readline()

    def isatty(self) -> bool:
        req = self._io()
        if req is None:
            return False
        return bool(
            req.tty.get({"out": "stdout", "err": "stderr", "in": "stdin"}[self._stream], False)
        )

    def fileno(self) -> int:
        req = self._io()
        if req is None and self._fallback is not None:
            return int(self._fallback.fileno())
        raise io.UnsupportedOperation("a memex service request has no file descriptor")


def install_routers() -> None:
    """Replace sys.stdout/stderr/stdin by routers (once per process; the GUI may host too)."""
    if isinstance(sys.stdout, _Router):
        return
    sys.stdout = _Router(sys.stdout, "out")
    sys.stderr = _Router(sys.stderr, "err")
    sys.stdin = _Router(sys.stdin, "in")
