"""`memex serve`: the local OpenAI-compatible API and every refusal it makes."""

from __future__ import annotations

import http.client
import json
import socket
import stat

import pytest

from app.server import MemexAPIServer
from tests.app._answers_support import make_runtime

ORIGIN_OK = "http://localhost:3000"


@pytest.fixture(scope="module")
def api(tmp_path_factory, embedder):
    rt = make_runtime(
        tmp_path_factory.mktemp("serve-home"),
        embedder,
        inbox_use_model=False,
        max_answer_tokens=24,
        api_allowed_origins=[ORIGIN_OK],
        api_max_body_bytes=65536,
        api_rate_per_minute=10000,
    )
    rt.remember("My cat is a grey tabby called Pixel.", source="diary")
    server = MemexAPIServer(rt, 0)
    server.start_background()
    yield server
    server.stop()
    rt.close()


def request(
    server: MemexAPIServer,
    method: str,
    path: str,
    body: object = None,
    *,
    token: str | None = "default",
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = f"Bearer {server.token if token == 'default' else token}"
    h.update(headers or {})
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data, headers=h)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    try:
        parsed = json.loads(payload) if payload else {}
    except json.JSONDecodeError:
        parsed = {"_raw": payload.decode()}
    return resp.status, parsed, dict(resp.getheaders())


CHAT = {"model": "memex", "messages": [{"role": "user", "content": "What is my cat called?"}]}


def test_token_file_is_private(api):
    path = api.runtime.settings.home / "api-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == api.token and len(api.token) >= 32


def test_models(api):
    status, body, _ = request(api, "GET", "/v1/models")
    assert status == 200 and body["data"][0]["id"] == "memex"


def test_completion_answers_with_citations(api):
    status, body, _ = request(api, "POST", "/v1/chat/completions", CHAT)
    assert status == 200 and body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"]
    assert [c["text"] for c in body["memex"]["citations"]] == [
        "My cat is a grey tabby called Pixel."
    ]


def test_streaming_completion(api):
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=300)
    conn.request(
        "POST",
        "/v1/chat/completions",
        body=json.dumps({**CHAT, "stream": True}),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api.token}"},
    )
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
    events = [line[6:] for line in resp.read().decode().splitlines() if line.startswith("data: ")]
    conn.close()
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert len(chunks) >= 4 and text.strip()
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["memex"]["citations"]


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_refuses_missing_or_wrong_token(api, token):
    status, body, headers = request(api, "GET", "/v1/models", token=token)
    assert (
        status == 401
        and body["error"]["type"] == "unauthorized"
        and headers["WWW-Authenticate"] == "Bearer"
    )


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "0.0.0.0:{port}"]
)
def test_refuses_foreign_host_header(api, host):
    status, body, _ = request(
        api, "GET", "/v1/models", headers={"Host": host.format(port=api.port)}
    )
    assert status == 403 and body["error"]["type"] == "forbidden_host"


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}"])
def test_accepts_local_host_headers(api, host):
    assert request(api, "GET", "/v1/models", headers={"Host": host.format(port=api.port)})[0] == 200


def test_refuses_foreign_origin_and_allows_a_configured_one(api):
    status, body, _ = request(api, "GET", "/v1/models", headers={"Origin": "https://evil.example"})
    assert status == 403 and body["error"]["type"] == "forbidden_origin"
    assert request(api, "GET", "/v1/models", headers={"Origin": "null"})[0] == 403
    assert request(api, "GET", "/v1/models", headers={"Origin": ORIGIN_OK})[0] == 200


def test_refuses_non_json_content_type(api):
    status, body, _ = request(
        api,
        "POST",
        "/v1/chat/completions",
        raw=b"question=hi",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 415 and body["error"]["type"] == "unsupported_media_type"
    status, _, _ = request(
        api,
        "POST",
        "/v1/chat/completions",
        raw=json.dumps(CHAT).encode(),
        headers={"Content-Type": "text/plain"},
    )
    assert status == 415


def test_refuses_oversized_body(api):
    huge = {"messages": [{"role": "user", "content": "x" * 1_000_000}]}  # a 1 MB question
    status, body, _ = request(api, "POST", "/v1/chat/completions", huge)
    assert status == 413 and body["error"]["type"] == "payload_too_large"


def test_refuses_huge_content_length_without_reading_it(api):
    sock = socket.create_connection(("127.0.0.1", api.port), timeout=60)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{api.port}\r\nAuthorization: Bearer {api.token}\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{"
    )
    reply = b""
    while chunk := sock.recv(4096):
        reply += chunk
    sock.close()
    assert reply.startswith(b"HTTP/1.1 413")
    assert request(api, "GET", "/v1/models")[0] == 200  # still serving


@pytest.mark.parametrize(
    "raw, kind",
    [
        (b"{not json", "invalid_json"),
        (json.dumps({"messages": []}).encode(), "invalid_request"),
        (
            json.dumps({"messages": [{"role": "system", "content": "hi"}]}).encode(),
            "invalid_request",
        ),
        (
            json.dumps({"messages": [{"role": "user", "content": "   "}]}).encode(),
            "invalid_request",
        ),
        (json.dumps({"messages": [{"role": "user", "content": "x" * 9000}]}).encode(), "bad_input"),
    ],
)
def test_refuses_bad_requests(api, raw, kind):
    status, body, _ = request(api, "POST", "/v1/chat/completions", raw=raw)
    assert status == 400 and body["error"]["type"] == kind


def test_unknown_route(api):
    assert request(api, "GET", "/v1/secrets")[0] == 404
    assert request(api, "POST", "/admin", CHAT)[0] == 404


def test_client_disconnect_mid_stream_keeps_serving(api):
    body = json.dumps(
        {
            "messages": [{"role": "user", "content": "Tell me a long story about my cat."}],
            "stream": True,
            "max_tokens": 200,
        }
    ).encode()
    sock = socket.create_connection(("127.0.0.1", api.port), timeout=300)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{api.port}\r\nAuthorization: Bearer {api.token}\r\n".encode()
        + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    got = b""
    while b"data: " not in got:
        got += sock.recv(4096)
    sock.close()  # gone mid-stream
    status, reply, _ = request(api, "POST", "/v1/chat/completions", CHAT)
    assert status == 200 and reply["choices"][0]["message"]["content"]


def test_rate_limit(tmp_path, embedder):
    rt = make_runtime(tmp_path / "h", embedder, api_rate_per_minute=3)
    server = MemexAPIServer(rt, 0)
    server.start_background()
    try:
        codes = [request(server, "GET", "/v1/models")[0] for _ in range(3)]
        status, body, headers = request(server, "GET", "/v1/models")
        assert codes == [200, 200, 200] and status == 429 and int(headers["Retry-After"]) >= 1
        assert body["error"]["type"] == "rate_limited"
    finally:
        server.stop()
        rt.close()


def test_binds_loopback_only(api):
    assert api.server_address[0] == "127.0.0.1"


def test_official_openai_client_streams(api):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{api.port}/v1", api_key=api.token, max_retries=0
    )
    pieces = [
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="memex",
            messages=[{"role": "user", "content": "What is my cat called?"}],
            stream=True,
        )
    ]
    assert "".join(pieces).strip()


def test_serve_command(memex_home):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, MEMEX_HOME=str(memex_home))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from app.cli import main; main()",
            "serve",
            "--port",
            "0",
            "--json",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(proc.stdout.readline())
        port = int(info["url"].rsplit(":", 1)[1].split("/")[0])
        token = Path(info["token_file"]).read_text().strip()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/v1/models", headers={"Authorization": f"Bearer {token}"})
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_busy_port_is_a_clear_error(tmp_path, embedder):
    from app.errors import MemexError
    from app.server import serve

    rt = make_runtime(tmp_path / "h", embedder)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        with pytest.raises(MemexError, match="choose another --port") as err:
            serve(rt, busy.getsockname()[1])
        assert err.value.kind == "port_in_use"
    finally:
        busy.close()
        rt.close()
