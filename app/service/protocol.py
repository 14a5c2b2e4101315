"""The wire between a client and the service: length-prefixed JSON frames on a Unix socket.

A frame is a 4-byte big-endian length and one UTF-8 JSON object. Client -> service frames
carry "op"; service -> client frames carry "t":

    run     {"op":"run","argv":[..],"cwd","version","fingerprint","tty":{"stdin","stdout","stderr"}}
            -> {"t":"out"|"err","data"} ... {"t":"read"} (wants a stdin line) ...
               {"t":"exit","code"}
    stdin   {"op":"stdin","data"}            one line for a {"t":"read"}; "" is end of input
    cancel  {"op":"cancel"}                  Ctrl-C: the command sees KeyboardInterrupt
    status  {"op":"status"}                  -> {"t":"status", ...ServiceStatus}
    stop    {"op":"stop"}                    -> {"t":"stopping"}; it ends after in-flight work
    mcp     {"op":"mcp","tool","args","version","fingerprint"}   one `memex mcp` tool call
            -> {"t":"result","value"} | {"t":"error","error","kind"} (app/service/mcp_calls.py)
Any failure of the service itself is {"t":"error","error","kind"}; "restart" says the client
is of another version or has other settings than the running service.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any, Literal, TypedDict

MAX_FRAME = 64 * 1024 * 1024
_HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer sent something that is not a frame, or went away mid-frame."""


class TtyFlags(TypedDict):
    stdin: bool
    stdout: bool
    stderr: bool


class RunRequest(TypedDict):
    op: Literal["run"]
    argv: list[str]
    cwd: str
    version: str
    fingerprint: str
    tty: TtyFlags


class ServiceStatus(TypedDict):
    pid: int
    version: str
    home: str
    started_at: float
    uptime_s: float
    in_flight: int
    requests: int
    idle_minutes: float
    hosted_by: str


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    # ASCII escapes: argv may carry undecodable bytes as lone surrogates, which UTF-8 cannot encode
    body = json.dumps(message, ensure_ascii=True, default=str).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise ProtocolError("frame too large")
    sock.sendall(_HEADER.pack(len(body)) + body)


def recv(sock: socket.socket) -> dict[str, Any] | None:
    """The next frame, or None when the peer closed the connection between frames."""
    header = _recv_exact(sock, _HEADER.size, allow_eof=True)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ProtocolError("frame too large")
    body = _recv_exact(sock, size, allow_eof=False) or b""
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not a JSON frame ({exc})") from exc
    except RecursionError as exc:
        raise ProtocolError("a frame nested too deeply") from exc
    if not isinstance(message, dict):
        raise ProtocolError("a frame must be a JSON object")
    return message


def _recv_exact(sock: socket.socket, n: int, *, allow_eof: bool) -> bytes | None:
    chunks: list[bytes] = []
    got = 0
    while got < n:
        try:
            chunk = sock.recv(n - got)
        except ConnectionResetError as exc:
            raise ProtocolError("connection reset") from exc
        if not chunk:
            if allow_eof and got == 0:
                return None
            raise ProtocolError("connection closed mid-frame")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
