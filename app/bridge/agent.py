"""The running app's side of the bridge: an owner-only Unix socket the native host asks.

Socket: $XDG_RUNTIME_DIR/memex/agent-<hash of MEMEX_HOME>.sock (folder 0700, socket 0600),
falling back to bridge_dir when there is no runtime dir. Every connection is checked with
SO_PEERCRED: only processes of the same user are served (the KeePassXC proxy design; a
TCP port on localhost would be reachable from web pages, cf. Zoom 2019, Ollama DNS rebinding).
Wire format: one JSON object per line each way: {"op": "profile"|"draft"|"ping"|"confirm", ...}.
`confirm` (see confirm.py) blocks until the user answers the first-fill dialog or its TTL
passes; it is HMAC-authenticated both ways with a secret only the app and its user's hosts read.
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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.bridge.confirm import (
    ANSWER,
    REQUEST,
    ConfirmAnswer,
    ConfirmError,
    ConfirmRequest,
    create_secret,
    read_secret,
    secret_path,
    sign,
    verify,
)

if TYPE_CHECKING:
    from app.bridge.service import MemoryAccess
    from app.settings import Settings

# Shows the first-fill dialog and returns the user's answer (called on a socket thread; blocks).
Confirmer = Callable[[ConfirmRequest], ConfirmAnswer]

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
            try:
                self._send(self.server.dispatch(line))
            except (
                BrokenPipeError,
                ConnectionResetError,
            ):  # the host stopped waiting (its timeout)
                return

    def _send(self, obj: dict[str, Any]) -> None:
        self.wfile.write(json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n")
        self.wfile.flush()


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(
        self,
        path: Path,
        access: MemoryAccess,
        confirmer: Confirmer | None = None,
        secret: bytes | None = None,
    ) -> None:
        self.access = access
        self.confirmer = confirmer
        self.secret = secret
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
            if op == "confirm":
                return self._confirm(req)
            return {"error": "unknown op", "kind": "malformed"}
        except json.JSONDecodeError:
            return {"error": "malformed request", "kind": "malformed"}
        except Exception as exc:  # the app keeps serving; the host falls back on its own
            log.exception("bridge agent request failed")
            return {"error": str(exc)[:200], "kind": "internal"}

    def _confirm(self, req: dict[str, Any]) -> dict[str, Any]:
        if self.confirmer is None or self.secret is None:
            return {"error": "this app does not show confirmations", "kind": "unsupported"}
        body = req.get("request")
        if not isinstance(body, dict) or not verify(self.secret, REQUEST, body, req.get("mac")):
            # a stranger on the socket: no dialog, nothing it could phish the user with
            log.warning("refused an unauthenticated confirmation request")
            return {"error": "unauthenticated confirmation request", "kind": "unauthenticated"}
        try:
            request = ConfirmRequest.from_json(body)
        except ConfirmError as exc:
            return {"error": str(exc), "kind": exc.kind}
        answer = self.confirmer(request).to_json()
        return {"result": answer, "mac": sign(self.secret, ANSWER, answer)}


class AgentServer:
    """Serve memory to native hosts from inside the app. `start()` returns at once.

    With a `confirmer`, hosts may also ask the app to confirm a site's first fill.
    """

    def __init__(
        self, settings: Settings, access: MemoryAccess, confirmer: Confirmer | None = None
    ) -> None:
        self.path = agent_socket_path(settings)
        self.access = access
        self.confirmer = confirmer
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> AgentServer:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                raise AgentUnavailable(f"another memex app already serves {self.path}")
            self.path.unlink()
        secret = create_secret(self.path) if self.confirmer is not None else None
        old_umask = os.umask(0o177)  # the socket is created 0600, with no window where it is wider
        try:
            self._server = _Server(self.path, self.access, self.confirmer, secret)
        finally:
            os.umask(old_umask)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="memex-bridge-agent", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            for path in (self.path, secret_path(self.path)):
                try:
                    path.unlink()
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

    def _connect(self) -> socket.socket:
        """A connection to the app's socket; AgentUnavailable if the app is not (safely) there."""
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
        except OSError as exc:
            sock.close()
            raise AgentUnavailable(str(exc)) from exc
        if uid is not None and uid != os.getuid():
            sock.close()
            raise AgentUnavailable("the socket belongs to another user")
        return sock

    @staticmethod
    def _exchange(sock: socket.socket, message: dict[str, Any]) -> bytes:
        sock.sendall(json.dumps(message).encode("utf-8") + b"\n")
        with sock.makefile("rb") as fh:
            return fh.readline(MAX_LINE + 1)

    def call(self, op: str, **args: Any) -> Any:
        sock = self._connect()
        try:
            line = self._exchange(sock, {"op": op, **args})
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


class AppConfirmer:
    """The host's side of `confirm`: ask the running app, wait for the user's answer.

    `ask` returns None when no app can show the dialog (not running, or an app without the
    op): the extension then confirms. Once the app has the request, every failure refuses.
    """

    def __init__(self, settings: Settings) -> None:
        self.path = agent_socket_path(settings)
        self.grace_s = 5.0  # the app refuses at the TTL itself; past TTL + grace the app is hung

    def ask(self, request: ConfirmRequest) -> ConfirmAnswer | None:
        secret = read_secret(self.path)
        if secret is None:
            return None
        body = request.to_json()
        try:
            sock = AgentClient(self.path, timeout=5.0)._connect()
        except AgentUnavailable:
            return None
        try:
            sock.settimeout(request.ttl_s + self.grace_s)
            mac = sign(secret, REQUEST, body)
            line = AgentClient._exchange(sock, {"op": "confirm", "request": body, "mac": mac})
        except TimeoutError as exc:
            raise ConfirmError(
                "The memex app did not answer in time; fill again to retry.", "confirm_timeout"
            ) from exc
        except OSError as exc:
            raise ConfirmError(
                "The memex app stopped before you answered; fill again to retry.", "confirm_failed"
            ) from exc
        finally:
            sock.close()
        if not line:
            raise ConfirmError(
                "The memex app closed before you answered; fill again to retry.", "confirm_failed"
            )
        try:
            reply = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfirmError(
                "The memex app sent an unreadable answer.", "confirm_failed"
            ) from exc
        if not isinstance(reply, dict):
            raise ConfirmError("The memex app sent an unreadable answer.", "confirm_failed")
        if "error" in reply:
            if reply.get("kind") == "unsupported" or reply.get("error") == "unknown op":
                return None  # an app that cannot show the dialog: the extension asks instead
            raise ConfirmError(
                f"The memex app refused the confirmation ({str(reply['error'])[:120]}).",
                "confirm_failed",
            )
        result = reply.get("result")
        if not isinstance(result, dict) or not verify(secret, ANSWER, result, reply.get("mac")):
            raise ConfirmError(
                "The confirmation answer did not come from the memex app; fill refused.",
                "confirm_unauthenticated",
            )
        return ConfirmAnswer.from_json(result)
