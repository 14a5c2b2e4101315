"""`inference.base.Backend` on any OpenAI-compatible server (Ollama, LM Studio, vLLM,
llama.cpp's and llama-cpp-python's servers), over the standard library's HTTP client.

Memories are in every prompt, so a server that is not on this machine is refused unless the
user set `allow_remote_backend`. Replies stream as server-sent events; refusals, time-outs
and unreachable servers become one-sentence BackendErrors.
"""

from __future__ import annotations

import ipaddress
import json
import math
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from inference.base import BackendConfig, BackendError, ChatMessage, GenerationParams

# llama.cpp-family servers default to repeat_penalty 1.1 where llama-cpp-python's own
# create_chat_completion uses 1.0; sending it keeps remote and local answers the same.
LLAMA_EXTRAS = {"repeat_penalty": 1.0}
CHARS_PER_TOKEN = 3.0  # conservative guess when the server cannot tokenize


def is_loopback(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere, so it counts as remote


class OpenAIBackend:
    """Chat completions from a server at `openai_base_url` (e.g. http://127.0.0.1:11434/v1)."""

    name = "openai"

    def __init__(self, config: BackendConfig) -> None:
        opts = config.options
        base = (opts.get("openai_base_url") or "").strip().rstrip("/")
        if not base:
            raise BackendError(
                "The openai backend needs a server address: set openai_base_url "
                "(e.g. http://127.0.0.1:11434/v1)."
            )
        parsed = urlparse(base)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise BackendError(
                f"openai_base_url {base!r} is not an http(s) URL; use e.g. http://127.0.0.1:8080/v1."
            )
        if not is_loopback(base) and opts.get("allow_remote_backend", "false").lower() != "true":
            raise BackendError(
                f"{parsed.hostname} is not this computer and your memories would be sent there; "
                "set allow_remote_backend to true if you trust that server."
            )
        self.base_url = base if base.endswith("/v1") else base + "/v1"
        self.api_key = opts.get("openai_api_key", "")
        # Single-model servers (llama.cpp's) serve whatever they loaded under any name.
        self.model = opts.get("openai_model", "") or "default"
        self.timeout = float(opts.get("openai_timeout_s", "") or 120)
        self.n_ctx = config.n_ctx
        self._extras: dict[str, Any] = dict(LLAMA_EXTRAS)
        self._tokenize: str | None = None  # the server's tokenize endpoint, once found
        self._probed = False

    # -- HTTP --------------------------------------------------------------------------
    def _request(
        self,
        path: str,
        body: dict[str, Any] | None,
        *,
        root: bool = False,
        timeout: float | None = None,
    ) -> Any:
        url = (self.base_url.removesuffix("/v1") if root else self.base_url) + path
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode("utf-8") if body is not None else None
        req = urllib.request.Request(
            url, data=data, headers=headers, method="POST" if data else "GET"
        )
        try:
            return urllib.request.urlopen(req, timeout=timeout or self.timeout)  # noqa: S310 - http(s) only
        except urllib.error.HTTPError as exc:
            raise BackendError(self._refusal(exc)) from exc
        except TimeoutError as exc:
            raise BackendError(
                f"The model server at {self.base_url} did not answer within "
                f"{self.timeout:.0f} s; check that it is running and not overloaded."
            ) from exc
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise BackendError(
                    f"The model server at {self.base_url} did not answer within "
                    f"{self.timeout:.0f} s; check that it is running."
                ) from exc
            raise BackendError(
                f"Cannot reach the model server at {self.base_url} ({reason}); "
                "start it or fix openai_base_url."
            ) from exc

    def _refusal(self, exc: urllib.error.HTTPError) -> str:
        detail = ""
        try:
            payload = json.loads(exc.read().decode("utf-8", "replace") or "{}")
            err = payload.get("error", payload.get("detail", ""))
            detail = err.get("message", "") if isinstance(err, dict) else str(err)
        except (ValueError, AttributeError, OSError):
            pass
        detail = f": {detail.strip()[:200]}" if detail else ""
        if exc.code in (401, 403):
            return (
                f"The model server refused the request ({exc.code}{detail}); check openai_api_key."
            )
        if exc.code == 404:
            return (
                f"The model server has no {exc.url} or no model {self.model!r} "
                f"({exc.code}{detail}); check openai_model."
            )
        return f"The model server refused the request ({exc.code}{detail})."

    # -- Backend protocol --------------------------------------------------------------
    def stream(self, messages: list[ChatMessage], params: GenerationParams) -> Iterator[str]:
        body: dict[str, Any] = {
            "model": self.model,
            "stream": True,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
            **self._extras,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        grammar = getattr(params, "grammar", "")
        if grammar:
            # GBNF, as llama.cpp's and llama-cpp-python's servers take it; others refuse it loudly.
            body["grammar"] = grammar
        try:
            resp = self._request("/chat/completions", body)
        except BackendError as exc:
            # A strict server (OpenAI's own) rejects llama.cpp's sampling field: retry without it.
            if not self._extras or "repeat_penalty" not in str(exc):
                raise
            self._extras = {}
            body = {k: v for k, v in body.items() if k not in LLAMA_EXTRAS}
            resp = self._request("/chat/completions", body)
        with resp:
            yield from _sse_pieces(resp, self.base_url, self.timeout)

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        if not self._probed:
            self._probed = True
            self._tokenize = self._find_tokenizer()
        if self._tokenize is not None:
            try:
                return self._server_tokens(self._tokenize, text)
            except (BackendError, ValueError, KeyError, TypeError):
                self._tokenize = None
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def _find_tokenizer(self) -> str | None:
        for path in ("/extras/tokenize", "/tokenize"):
            try:
                self._server_tokens(path, "probe")
                return path
            except (BackendError, ValueError, KeyError, TypeError):
                continue
        return None

    def _server_tokens(self, path: str, text: str) -> int:
        # llama-cpp-python: /extras/tokenize {"input"} -> {"tokens"}; llama.cpp: /tokenize
        # {"content"}.
        body = (
            {"input": text, "model": self.model}
            if path.startswith("/extras")
            else {"content": text}
        )
        with self._request(path, body, root=True, timeout=min(self.timeout, 10.0)) as resp:
            return len(json.loads(resp.read())["tokens"])

    @property
    def context_length(self) -> int:
        return self.n_ctx

    def describe(self) -> dict[str, str]:
        return {
            "backend": self.name,
            "model": self.model,
            "adapter": "",
            "server": self.base_url,
            "n_ctx": str(self.n_ctx),
        }

    def close(self) -> None:
        """Nothing native to free: each request opens and closes its own connection."""


def _sse_pieces(resp: Any, base_url: str, timeout: float) -> Iterator[str]:
    """Text pieces from an OpenAI `text/event-stream` (one `data: {json}` line per event)."""
    try:
        for raw in resp:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                event = json.loads(data)
            except json.JSONDecodeError:
                continue
            if "error" in event:
                err = event["error"]
                msg = err.get("message", err) if isinstance(err, dict) else err
                raise BackendError(f"The model server stopped with an error: {str(msg)[:200]}.")
            for choice in event.get("choices") or ():
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield str(piece)
    except TimeoutError as exc:
        raise BackendError(
            f"The model server at {base_url} went silent for {timeout:.0f} s mid-answer."
        ) from exc
