"""Talking to the service: the CLI's thin-client relay and a small typed API for front-ends.

Imports nothing heavy: the standard library, platformdirs and the service's own light
modules. Front-ends that are processes of their own (`memex mcp`, the bridge host) use

    from app.service.client import call, ServiceCallError
    result = call("search", ["dentist", "--k", "3"])     # -> the command's --json object

`call` runs the command in the service (starting it when needed). When no service can run,
the `local` runner an entry point hands in (app.cli.run_in_process) runs it in this process:
the client sits below the front-ends and the CLI, so it never imports them itself.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import MemexError
from app.service import protocol
from app.service.lock import lock_held, read_owner
from app.service.paths import (
    lock_path,
    log_path,
    resolve_home,
    service_disabled,
    service_version,
    settings_fingerprint,
    short_address,
    socket_path,
)

if TYPE_CHECKING:
    import subprocess

START_TIMEOUT_S = 30.0
DIED = (
    "The memex service stopped before answering; "
    "run the command again (a fresh service will start)."
)
NO_SERVICE = (
    "No memex service can run `memex {command}` here; start one with `memex service start`."
)

# Runs `memex ARGV` in this process (app.cli.run_in_process); its exit is a SystemExit.
LocalRunner = Callable[[list[str]], Any]


class ServiceCallError(MemexError):
    """A command run through `call` failed: its one-sentence message, kind and exit status
    (a MemexError, so front-ends show it like any other)."""

    def __init__(self, message: str, kind: str, exit_code: int) -> None:
        super().__init__(message, kind=kind, exit_code=exit_code)


def connect(home: Path) -> socket.socket | None:
    path = socket_path(home)
    if not path.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with short_address(path) as address:
            sock.connect(address)
    except OSError:  # refused: a socket left by a killed service
        sock.close()
        return None
    return sock


def connect_ok(home: Path) -> bool:
    """Whether a service answers on the folder's socket now (starts nothing)."""
    sock = connect(home)
    if sock is None:
        return False
    sock.close()
    return True


def start_detached(home: Path) -> subprocess.Popen[bytes]:
    """Start `python -m app.service` in its own session, logging to MEMEX_HOME/service.log."""
    import subprocess

    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    env = dict(os.environ)
    env.pop("MEMEX_NO_SERVICE", None)
    root = str(Path(__file__).resolve().parents[2])  # works from a source checkout as well
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    fd = os.open(log_path(home), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "app.service", "--home", str(home)],
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            cwd="/",
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(fd)


def ensure_service(
    home: Path, *, autostart: bool = True, timeout: float = START_TIMEOUT_S
) -> socket.socket | None:
    """A connection to the folder's service, starting one when none runs (None: cannot)."""
    sock = connect(home)
    if sock is not None or not autostart:
        return sock
    deadline = time.monotonic() + timeout
    child: subprocess.Popen[bytes] | None = None
    spawns = 0
    while time.monotonic() < deadline:
        sock = connect(home)
        if sock is not None:
            return sock
        free = not lock_held(lock_path(home))
        if free and (child is None or child.poll() is not None):
            if (child is not None and child.returncode != 0) or spawns == 3:
                return None  # it cannot start (see service.log): work in-process
            try:
                child = start_detached(home)
            except OSError:
                return None
            spawns += 1
        time.sleep(0.02)
    return None


def wait_stopped(home: Path, timeout: float = 45.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not lock_held(lock_path(home)):
            return True
        time.sleep(0.05)
    return False


def request(home: Path, message: dict[str, Any], timeout: float = 5.0) -> dict[str, Any] | None:
    """One request-reply exchange (status, stop); None when no service answers."""
    sock = connect(home)
    if sock is None:
        return None
    with sock:
        sock.settimeout(timeout)
        try:
            protocol.send(sock, message)
            return protocol.recv(sock)
        except (OSError, protocol.ProtocolError):
            return None


def status(home: Path) -> dict[str, Any] | None:
    reply = request(home, {"op": "status"})
    if reply is None or reply.get("t") != "status":
        return None
    reply.pop("t", None)
    return reply


def stop(home: Path, *, wait: bool = True) -> bool:
    """Ask the service to stop (after its requests in flight); False when none ran."""
    reply = request(home, {"op": "stop"})
    if reply is not None and reply.get("t") == "error":  # the desktop app hosts it
        raise ServiceCallError(str(reply.get("error")), str(reply.get("kind", "service")), 1)
    if reply is None:
        owner = read_owner(lock_path(home))
        return False if owner is None else (wait_stopped(home) if wait else True)
    return wait_stopped(home) if wait else True


def _run_request(argv: Sequence[str]) -> dict[str, Any]:
    return {
        "op": "run",
        "argv": list(argv),
        "cwd": os.getcwd(),
        "version": service_version(),
        "fingerprint": settings_fingerprint(),
        "tty": {
            "stdin": _isatty(sys.stdin),
            "stdout": _isatty(sys.stdout),
            "stderr": _isatty(sys.stderr),
        },
    }


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def relay(
    argv: Sequence[str], home: Path, *, autostart: bool = True, out: Any = None, err: Any = None
) -> int | None:
    """Run `memex ARGV` in the service, with its terminal here; None: run it in-process."""
    out = out or sys.stdout
    err = err or sys.stderr
    for _attempt in range(2):
        sock = ensure_service(home, autostart=autostart)
        if sock is None:
            return None
        with sock:
            try:
                protocol.send(sock, _run_request(argv))
            except OSError:
                continue
            code = _pump(sock, argv, out, err)
        if code != "restart":
            return code if isinstance(code, int) else None
        if not wait_stopped(home):
            return None
    return None


def _pump(sock: socket.socket, argv: Sequence[str], out: Any, err: Any) -> int | str:
    """Relay frames until the command's exit status; Ctrl-C cancels it there, twice quits here."""
    interrupted = False
    started = False
    while True:
        try:
            try:
                frame = protocol.recv(sock)
            except (OSError, protocol.ProtocolError):
                frame = None
            if frame is None:
                return _died(argv, out, err)
            kind = frame.get("t")
            if kind == "restart" and not started:
                return "restart"
            started = True
            if kind == "out" or kind == "err":
                stream = out if kind == "out" else err
                stream.write(frame.get("data", ""))
                stream.flush()
            elif kind == "read":
                protocol.send(sock, {"op": "stdin", "data": sys.stdin.readline()})
            elif kind == "exit":
                return int(frame.get("code", 0))
            elif kind == "error":
                return _report(
                    argv, out, err, str(frame.get("error")), str(frame.get("kind", "service")), 1
                )
        except KeyboardInterrupt:
            if interrupted:
                return 130
            interrupted = True
            try:
                protocol.send(sock, {"op": "cancel"})
            except OSError:
                return 130


def _died(argv: Sequence[str], out: Any, err: Any) -> int:
    return _report(argv, out, err, DIED, "service_unavailable", 1)


def _report(argv: Sequence[str], out: Any, err: Any, message: str, kind: str, code: int) -> int:
    if "--json" in argv:
        out.write(json.dumps({"error": message, "kind": kind}, ensure_ascii=False) + "\n")
        out.flush()
    else:
        err.write(f"memex: {message}\n")
        err.flush()
    return code


def call(
    command: str,
    args: Sequence[str] = (),
    *,
    home: str | Path | None = None,
    autostart: bool = True,
    local: LocalRunner | None = None,
) -> dict[str, Any]:
    """Run `memex COMMAND ARGS --json` (in the service when one can run) and return its object.

    No service: `local` runs it in this process; without one, ServiceCallError (kind
    service_unavailable), so a caller with a route of its own (the bridge host) takes that.
    Raises ServiceCallError with the command's message and kind when it fails.
    """
    resolved = resolve_home(str(home) if home is not None else None)
    argv = ["--home", str(resolved), command, *args, "--json"]
    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    if not service_disabled():
        code = relay(argv, resolved, autostart=autostart, out=out, err=err)
    if code is None:
        if local is None:
            raise ServiceCallError(NO_SERVICE.format(command=command), "service_unavailable", 1)
        code = _in_process(argv, out, local)
    lines = out.getvalue().strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        result = {"error": lines[-1], "kind": "error"}
    if code != 0:
        raise ServiceCallError(
            str(result.get("error") or err.getvalue().strip() or "memex failed."),
            str(result.get("kind", "error")),
            code or 1,
        )
    return result


def _in_process(argv: list[str], out: io.StringIO, local: LocalRunner) -> int:
    try:
        with redirect_stdout(out):
            local(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
