"""The running app's side of the bridge: an owner-only Unix socket the native host asks.

Socket: $XDG_RUNTIME_DIR/memex/agent-<hash of MEMEX_HOME>.sock (folder 0700, socket 0600),
falling back to bridge_dir when there is no runtime dir. Every connection is checked with
SO_PEERCRED: only processes of the same user are served (the KeePassXC proxy design; a
TCP port on localhost would be reachable from web pages, cf. Zoom 2019, Ollama DNS rebinding).
Wire format: one JSON object per line each way: {"op": "profile"|"draft"|"ping", ...}.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import socketserver
import stat
import struct
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.bridge.service import MemoryAccess
    from app.settings import Settings

log = logging.getLogger(__name__)
MAX_LINE = 1024 * 1024


class AgentUnavailable(Exception):
    pass


def agent_socket_path(settings: Settings) -> Path:
    digest = hashlib.sha256(str(settings.home.expanduser().resolve()).encode()).hexdigest()[:12]
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir and Path(runtime_dir).is_dir():
        return Path(runtime_dir) / "memex" / f"agent-{digest}.sock"
    return settings.bridge_dir / "agent.sock"


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end (Linux SO_PEERCRED); None where unsupported."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        uid = peer_uid(self.request)
        if uid is not None and uid != os.getuid():
            log.warning("refused bridge connection from uid %s", uid)
            return
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line:
                return
            if len(line) > MAX_LINE:
                self._send({"error": "request too large", "kind": "too_large"})
                return
            self._send(self.server.dispatch(line))

    def _send(self, obj: dict[str, Any]) -> None:
        self.wfile.write(json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n")
        self.wfile.flush()


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, access: MemoryAccess) -> None:
        self.access = access
        super().__init__(str(path), _Handler)

    def dispatch(self, line: bytes) -> dict[str, Any]:
        try:
            req = json.loads(line)
            op = req.get("op") if isinstance(req, dict) else None
            if op == "ping":
                return {"result": "pong"}
            if op == "profile":
                return {"result": self.access.profile()}
            if op == "draft" and isinstance(req.get("question"), str):
                return {"result": self.access.draft(req["question"][:2000])}
            return {"error": "unknown op", "kind": "malformed"}
        except json.JSONDecodeError:
            return {"error": "malformed request", "kind": "malformed"}
        except Exception as exc:  # the app keeps serving; the host falls back on its own
            log.exception("bridge agent request failed")
            return {"error": str(exc)[:200], "kind": "internal"}


class AgentServer:
    """Serve memory to native hosts from inside the app. `start()` returns at once."""

    def __init__(self, settings: Settings, access: MemoryAccess) -> None:
        self.path = agent_socket_path(settings)
        self.access = access
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> AgentServer:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                raise AgentUnavailable(f"another memex app already serves {self.path}")
            self.path.unlink()
        old_umask = os.umask(0o177)  # the socket is created 0600, with no window where it is wider
        try:
            self._server = _Server(self.path, self.access)
        finally:
            os.umask(old_umask)
        self._thread = threading.Thread(target=self._server.serve_forever, name="memex-bridge-agent",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self) -> AgentServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _answers(path: Path) -> bool:
    try:
        AgentClient(path, timeout=0.5).call("ping")
        return True
    except AgentUnavailable:
        return False


class AgentClient:
    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout

    def call(self, op: str, **args: Any) -> Any:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError as exc:
            raise AgentUnavailable("app not running") from exc
        # only talk to a socket our own user created, and that nobody else may open
        if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise AgentUnavailable(f"{self.path} is not an owner-only socket")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
            uid = peer_uid(sock)
            if uid is not None and uid != os.getuid():
                raise AgentUnavailable("the socket belongs to another user")
            sock.sendall(json.dumps({"op": op, **args}).encode("utf-8") + b"\n")
            with sock.makefile("rb") as fh:
                line = fh.readline(MAX_LINE + 1)
        except OSError as exc:
            raise AgentUnavailable(str(exc)) from exc
        finally:
            sock.close()
        try:
            reply = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AgentUnavailable("the app sent an unreadable reply") from exc
        if "error" in reply:
            raise AgentUnavailable(f"the app could not answer: {reply['error']}")
        return reply.get("result")
