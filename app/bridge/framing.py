"""Native-messaging framing: a 4-byte length in native byte order, then UTF-8 JSON.

Messages are capped at 1 MB in both directions (Chromium's limit for host -> browser; we
apply it to requests too so a hostile or broken peer cannot make the host allocate much).
An oversized frame is skipped without being held in memory, so the stream stays in sync.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

MAX_FRAME = 1024 * 1024
_HEADER = struct.Struct("=I")  # native byte order, as Chromium and Firefox write it
_DRAIN_CHUNK = 64 * 1024


class FrameError(Exception):
    """A frame that cannot be used; `kind` is the slug sent back to the peer."""

    def __init__(self, message: str, kind: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.fatal = fatal


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def read_frame(stream: BinaryIO, max_size: int = MAX_FRAME) -> dict[str, Any] | None:
    """Next message as a dict; None at a clean end of stream. Raises FrameError."""
    header = _read_exact(stream, _HEADER.size)
    if header is None:
        return None
    (length,) = _HEADER.unpack(header)
    if length > max_size:
        _drain(stream, length)
        raise FrameError(
            f"Message of {length} bytes exceeds the {max_size}-byte limit.", "too_large"
        )
    body = _read_exact(stream, length)
    if body is None:
        raise FrameError("The stream ended inside a message.", "truncated", fatal=True)
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FrameError(
            f"Message is not valid UTF-8 JSON ({exc.__class__.__name__}).", "malformed"
        ) from exc
    except RecursionError as exc:  # a hostile peer's [[[[...]]]]: refuse it, keep serving
        raise FrameError("Message is nested too deeply.", "malformed") from exc
    if not isinstance(message, dict):
        raise FrameError("Message must be a JSON object.", "malformed")
    return message


def _drain(stream: BinaryIO, length: int) -> None:
    left = length
    while left > 0:
        chunk = stream.read(min(_DRAIN_CHUNK, left))
        if not chunk:
            raise FrameError(
                "The stream ended inside an oversized message.", "too_large", fatal=True
            )
        left -= len(chunk)


def encode_frame(message: dict[str, Any], max_size: int = MAX_FRAME) -> bytes:
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(body) > max_size:
        raise FrameError(
            f"Reply of {len(body)} bytes exceeds the {max_size}-byte limit.", "too_large"
        )
    return _HEADER.pack(len(body)) + body


def write_frame(stream: BinaryIO, message: dict[str, Any]) -> None:
    stream.write(encode_frame(message))
    stream.flush()
