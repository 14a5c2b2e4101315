"""The local API under hostile traffic: strangers cannot lock the token holder out, and a
pathological body is a 400 with one sentence, not a 500."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.runtime import Runtime
from app.server import MemexAPIServer
from app.settings import load_settings


@pytest.fixture
def api(tmp_path: Path) -> Iterator[MemexAPIServer]:
    # No model or store is touched: every request here is settled by the guards.
    rt = Runtime(load_settings(home=tmp_path / "home", api_rate_per_minute=5))
    rt.settings.ensure_home()
    server = MemexAPIServer(rt, 0)
    server.start_background()
    yield server
    server.stop()
    rt.close()


def _call(
    server: MemexAPIServer,
    method: str,
    path: str,
    *,
    token: str | None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    h = {"Content-Type": "application/json", **(headers or {})}
    if token:
        h["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    return resp.status, json.loads(payload) if payload else {}


def test_token_less_flood_never_locks_the_token_holder_out(api: MemexAPIServer) -> None:
    # a web page firing <img src="http://127.0.0.1:PORT/..."> requests: no token, no Origin
    codes = [_call(api, "GET", "/v1/models", token=None)[0] for _ in range(40)]
    assert set(codes) == {401, 429} and codes[-1] == 429  # the strangers are limited ...
    wrong = [_call(api, "GET", "/v1/models", token="guess-" + str(i))[0] for i in range(5)]
    assert set(wrong) == {429}  # ... and so is guessing
    status, body = _call(api, "GET", "/v1/models", token=api.token)
    assert status == 200 and body["data"][0]["id"] == "memex"  # ... but the owner is not


def test_token_holder_is_still_rate_limited_on_its_own(api: MemexAPIServer) -> None:
    codes = [_call(api, "GET", "/v1/models", token=api.token)[0] for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[-1] == 429


@pytest.mark.parametrize("depth", [100_000, 5_000])
def test_deeply_nested_body_is_a_400(api: MemexAPIServer, depth: int) -> None:
    body = ('{"model":"memex","messages":' + "[" * depth + "]" * depth + "}").encode()
    status, reply = _call(api, "POST", "/v1/chat/completions", token=api.token, body=body)
    assert status == 400
    msg = reply["error"]["message"]
    assert (
        "nested too deeply" in msg and "\n" not in msg and reply["error"]["type"] == "invalid_json"
    )
    # the server still answers
    assert _call(api, "GET", "/v1/models", token=api.token)[0] == 200


def test_nested_body_without_token_is_refused_before_parsing(api: MemexAPIServer) -> None:
    body = ("[" * 100_000 + "]" * 100_000).encode()
    status, reply = _call(api, "POST", "/v1/chat/completions", token=None, body=body)
    assert status == 401 and reply["error"]["type"] == "unauthorized"
