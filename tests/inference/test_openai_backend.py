"""The `openai` backend against a real llama-cpp-python server (`python -m llama_cpp.server`)
on the bundled model: the same answers as the local backend at temperature 0, streaming,
one-sentence errors for refusals, time-outs and servers that are not on this machine."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference.base import (
    BackendConfig,
    BackendError,
    ChatMessage,
    GenerationParams,
    create_backend,
)
from tests.process_support import free_port, serving

PERSONA = Path(__file__).resolve().parents[1] / "fixtures" / "persona"
KEY = "test-key-123"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    pytest.importorskip("fastapi")
    pytest.importorskip("sse_starlette")
    pytest.importorskip("starlette_context")
    pytest.importorskip("uvicorn")
    from inference.llamacpp import physical_cores
    from inference.models import bundled_path

    port, threads = free_port(), str(physical_cores())
    base = f"http://127.0.0.1:{port}/v1"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(bundled_path()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_threads",
        threads,
        "--n_threads_batch",
        threads,
        "--seed",
        "0",
        "--api_key",
        KEY,
        "--verbose",
        "false",
    ]
    with serving(cmd, base + "/models", headers={"Authorization": f"Bearer {KEY}"}):
        yield base


def remote(base: str, **options: str) -> object:
    opts = {"openai_base_url": base, "openai_api_key": KEY, **options}
    return create_backend("openai", BackendConfig(n_ctx=4096, options=opts))


def questions() -> list[list[ChatMessage]]:
    notes = [
        json.loads(line)["text"]
        for line in (PERSONA / "notes.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    qs = [q["q"] for q in json.loads((PERSONA / "questions.json").read_text(encoding="utf-8"))][:10]
    memories = "\n".join(f"- {n}" for n in notes[:6])
    system = f"You answer questions about the user from their memories.\nMemories:\n{memories}"
    return [[ChatMessage("system", system), ChatMessage("user", q)] for q in qs]


@pytest.mark.slow
def test_same_answers_as_the_local_backend(server: str):
    msgs = questions()
    assert len(msgs) == 10
    params = GenerationParams(max_tokens=32, temperature=0.0)
    far = remote(server)
    local = create_backend("llamacpp", BackendConfig(n_ctx=4096))
    try:
        pairs = [("".join(local.stream(m, params)), "".join(far.stream(m, params))) for m in msgs]
        # the server tokenizes with the same vocabulary (llama-cpp-python's /extras/tokenize)
        assert far.count_tokens("Where do I live now?") == local.count_tokens(
            "Where do I live now?"
        )
    finally:
        local.close()
        far.close()
    same = sum(a == b for a, b in pairs)
    assert all(a.strip() for a, _ in pairs)
    assert same == 10, [p for p in pairs if p[0] != p[1]]


@pytest.mark.slow
def test_reply_streams_in_pieces(server: str):
    far = remote(server)
    pieces = list(
        far.stream(
            [ChatMessage("user", "Count from one to ten in words.")],
            GenerationParams(max_tokens=24),
        )
    )
    assert len(pieces) > 3 and "".join(pieces).strip()
    assert far.describe()["server"] == server


@pytest.mark.slow
def test_wrong_key_is_a_refusal(server: str):
    far = remote(server, openai_api_key="wrong")
    with pytest.raises(BackendError, match=r"refused the request \(401.*check openai_api_key\.$"):
        list(far.stream([ChatMessage("user", "hi")], GenerationParams(max_tokens=4)))


def test_silent_server_times_out():
    """A server that accepts the connection and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    held: list[socket.socket] = []
    t = threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True)
    t.start()
    try:
        far = remote(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", openai_timeout_s="0.5")
        with pytest.raises(
            BackendError, match=r"did not answer within 0 s|did not answer within 1 s"
        ):
            list(far.stream([ChatMessage("user", "hi")], GenerationParams(max_tokens=4)))
    finally:
        for c in held:
            c.close()
        listener.close()


def test_nothing_listening_is_one_sentence():
    far = remote(f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(
        BackendError,
        match=r"^Cannot reach the model server at .*; start it or fix openai_base_url\.$",
    ):
        list(far.stream([ChatMessage("user", "hi")], GenerationParams(max_tokens=4)))


def test_memories_stay_home_unless_allowed():
    with pytest.raises(
        BackendError, match=r"^10\.1\.2\.3 is not this computer .* set allow_remote_backend"
    ):
        remote("http://10.1.2.3:8080/v1")
    with pytest.raises(BackendError, match="is not this computer"):
        remote("https://models.example.org/v1")
    assert (
        remote("http://10.1.2.3:8080/v1", allow_remote_backend="true").base_url
        == "http://10.1.2.3:8080/v1"
    )
    for local in ("http://localhost:11434", "http://127.0.0.1:1234/v1", "http://[::1]:8080/v1"):
        assert remote(local).base_url.endswith("/v1")
    with pytest.raises(BackendError, match="needs a server address"):
        create_backend("openai", BackendConfig())
    with pytest.raises(BackendError, match="is not an http"):
        remote("ftp://127.0.0.1/v1")


def test_runtime_refuses_a_remote_server_in_one_sentence(memex_home):
    from app.errors import MemexError
    from app.runtime import Runtime
    from app.settings import load_settings

    rt = Runtime(load_settings(backend="openai", openai_base_url="http://192.0.2.7:8000/v1"))
    try:
        with pytest.raises(MemexError) as info:
            rt.generate("hi")
        assert info.value.kind == "model" and "allow_remote_backend" in info.value.message
    finally:
        rt.close()


@pytest.mark.slow
def test_runtime_answers_through_the_server(server: str, memex_home):
    """Settings pick the backend: Runtime's generate() through the server equals the local one."""
    from app.runtime import Runtime
    from app.settings import load_settings

    far = Runtime(load_settings(backend="openai", openai_base_url=server, openai_api_key=KEY))
    # The server decodes plainly; locally prompt-lookup drafts verify several tokens per batch,
    # whose float sums differ in the last bits and can flip a greedy choice. Compare like with like.
    near = Runtime(load_settings(prompt_lookup_tokens=0))
    try:
        assert far.backend.describe()["backend"] == "openai"
        prompt = "Name one colour of the sky."
        assert far.generate(prompt, max_tokens=12) == near.generate(prompt, max_tokens=12)
    finally:
        far.close()
        near.close()
