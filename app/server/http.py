"""The HTTP server: standard library ThreadingHTTPServer (no extra dependency, no event loop
to share with llama.cpp's blocking calls), bound to 127.0.0.1 only.

Every request passes, in order: Host (DNS rebinding) -> Origin (CSRF) -> bearer token ->
rate limit (token holders and strangers in separate buckets, so strangers cannot lock the
owner out) -> content type -> body size -> JSON (nesting bounded) -> request schema. Generation is
serialized by the backend's lock; a client that disconnects mid-stream only ends its own
stream (the generator is closed, which releases the model for the next request).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from app.errors import MemexError
from app.server import openai as wire
from app.server.security import (
    ClientLimits,
    bearer_ok,
    ensure_token,
    host_ok,
    json_content_type,
    origin_ok,
)

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)
BIND_HOST = "127.0.0.1"
REQUEST_TIMEOUT_S = 60  # a client that stops sending (slowloris) frees its thread after this
# Oversized bodies up to this multiple of the cap are read and dropped before the 413, so
# clients that send the whole body first still get the answer; bigger ones are cut off.
DRAIN_FACTOR = 16


class MemexAPIServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, runtime: Runtime, port: int, *, token: str | None = None) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.token = token or ensure_token(s.home)
        self.allowed_origins = frozenset(
            o.strip().rstrip("/").lower() for o in s.api_allowed_origins
        )
        self.max_body = s.api_max_body_bytes
        self.limiter = ClientLimits(s.api_rate_per_minute)
        super().__init__((BIND_HOST, port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="memex-api", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Refused(Exception):
    def __init__(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers or {}


class _Handler(BaseHTTPRequestHandler):
    server: MemexAPIServer
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_S
    server_version = "memex"
    sys_version = ""

    # -- routing --------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch(self._get)

    def do_POST(self) -> None:
        self._dispatch(self._post)

    def do_OPTIONS(self) -> None:
        # No CORS preflight support: browsers get no Access-Control-Allow-* and stop there.
        self._dispatch(lambda: self._refuse(405, "Method not allowed.", "method_not_allowed"))

    def _dispatch(self, route: Any) -> None:
        try:
            self._guard()
            route()
        except _Refused as exc:
            self.close_connection = (
                True  # a body we did not read must not be parsed as the next request
            )
            self._send_json(exc.status, wire.error(exc.message, exc.kind, exc.status), exc.headers)
        except (BrokenPipeError, ConnectionResetError):
            log.info("api: client went away")
        except Exception:  # never let one request take the server down
            log.exception("api: request failed")
            try:
                self._send_json(
                    500, wire.error("Internal error; see the server log.", "internal", 500)
                )
            except OSError:
                pass

    def _refuse(
        self, status: int, message: str, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        raise _Refused(status, message, kind, headers)

    def _guard(self) -> None:
        srv = self.server
        if not host_ok(self.headers.get("Host"), srv.port):
            self._refuse(403, "Host header not allowed.", "forbidden_host")
        if not origin_ok(self.headers.get("Origin"), srv.allowed_origins):
            self._refuse(403, "Origin not allowed.", "forbidden_origin")
        authenticated = bearer_ok(self.headers.get("Authorization"), srv.token)
        ok, wait = srv.limiter.allow(authenticated)
        if not ok:
            self._refuse(
                429,
                "Too many requests; slow down.",
                "rate_limited",
                {"Retry-After": str(int(wait) + 1)},
            )
        if not authenticated:
            self._refuse(
                401,
                "Missing or wrong bearer token (see $MEMEX_HOME/api-token).",
                "unauthorized",
                {"WWW-Authenticate": "Bearer"},
            )

    def _get(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send_json(200, wire.models())
        else:
            self._refuse(404, f"No route {self.path}.", "not_found")

    def _post(self) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._refuse(404, f"No route {self.path}.", "not_found")
        try:
            req = wire.parse_request(self._read_json())
            question, history = wire.split_conversation(req)
            stream = self.server.runtime.ask_stream(
                question, history=history, max_tokens=req.max_tokens
            )
        except wire.BadRequest as exc:
            raise _Refused(400, str(exc), "invalid_request") from exc
        except MemexError as exc:
            status = {"model": 503, "locked": 423}.get(exc.kind, 400)  # 423: the vault is locked
            raise _Refused(status, exc.message, exc.kind) from exc
        if req.stream:
            self._stream(stream)
        else:
            answer = stream.result()
            self._send_json(
                200, wire.completion(wire.completion_id(), answer, stream.prepared.prompt_tokens)
            )

    # -- body -----------------------------------------------------------------------
    def _read_json(self) -> Any:
        if not json_content_type(self.headers.get("Content-Type")):
            self._refuse(415, "Send the body as application/json.", "unsupported_media_type")
        if self.headers.get("Transfer-Encoding"):
            self._refuse(
                411, "Send a Content-Length; chunked bodies are not accepted.", "length_required"
            )
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._refuse(411, "Send a valid Content-Length.", "length_required")
        if length < 0 or length > self.server.max_body:
            self.close_connection = True  # the unread body must not be parsed as a next request
            if 0 < length <= DRAIN_FACTOR * self.server.max_body:
                self._drain(length)  # so a client that sends it all still reads our answer
            self._refuse(
                413, f"The body is larger than {self.server.max_body} bytes.", "payload_too_large"
            )
        raw = self.rfile.read(length)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._refuse(400, f"The body is not valid JSON ({exc}).", "invalid_json")
        except RecursionError:
            self._refuse(
                400, "The JSON body is nested too deeply to be a chat request.", "invalid_json"
            )

    def _drain(self, length: int) -> None:
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                break
            left -= len(chunk)

    # -- responses ------------------------------------------------------------------
    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, stream: Any) -> None:
        cid = wire.completion_id()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        pieces: Iterator[str] = iter(stream)
        try:
            self._event(wire.chunk(cid, {"role": "assistant"}))
            for piece in pieces:
                self._event(wire.chunk(cid, {"content": piece}))
            answer = stream.result()
            self._event(
                wire.chunk(cid, {}, "stop", {"citations": [c.to_json() for c in answer.citations]})
            )
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        finally:
            # On a disconnect this stops generation and releases the model lock at once.
            close = getattr(pieces, "close", None)
            if close is not None:
                close()

    def _event(self, obj: Any) -> None:
        self.wfile.write(b"data: " + json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        log.info("api: %s %s", self.address_string(), format % args)


def serve(runtime: Runtime, port: int) -> MemexAPIServer:
    """Create the server (binds now, so a busy port fails here); call serve_forever()."""
    try:
        return MemexAPIServer(runtime, port)
    except OSError as exc:
        raise MemexError(
            f"Cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose another --port.",
            kind="port_in_use",
        ) from exc
