"""Vectors on a real Chroma server (`chroma run`, started here) and `memex doctor --move-vectors`
moving them between it and the embedded store."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_support import run
from tests.process_support import free_port, serving


def _chroma_exe() -> str | None:
    beside = Path(sys.executable).parent / "chroma"
    return str(beside) if beside.exists() else shutil.which("chroma")


@pytest.fixture
def chroma_url(tmp_path: Path) -> Iterator[str]:
    exe = _chroma_exe()
    if exe is None:
        pytest.skip("the chroma CLI is not installed")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(
        [
            exe,
            "run",
            "--path",
            str(tmp_path / "chroma-server"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        url + "/api/v2/heartbeat",
        timeout_s=60,
    ):
        yield url


def test_store_on_a_chroma_server(chroma_url: str, memex_home: Path, embedder):
    from memory import MemoryStore

    store = MemoryStore(memex_home, chroma_url=chroma_url, embedder=embedder)
    try:
        bike, _ = store.remember("I bought a blue road bike in May.")
        store.remember("My dentist appointment is on Friday at nine.")
        assert store.vectors.count() == 2
        hits = store.search("which bike did I buy", k=1)
        assert hits[0].id == bike.id and hits[0].similarity is not None
        store.forget([bike.id])
        assert store.vectors.count() == 1
        assert store.health()["ok"]
    finally:
        store.close()
    assert not (memex_home / "chroma").exists()  # nothing was written to the embedded store


def test_move_vectors_to_the_server_and_back(
    capsys, chroma_url: str, memex_home: Path, monkeypatch
):
    monkeypatch.setenv("MEMEX_NO_SERVICE", "1")
    for text in (
        "I bought a blue road bike in May.",
        "My dentist appointment is on Friday at nine.",
        "Ana's birthday is on 3 March.",
    ):
        assert run(capsys, "--json", "remember", text)[0] == 0

    code, out = run(
        capsys, "--json", "doctor", "--move-vectors", "server", "--chroma-url", chroma_url
    )
    assert code == 0, out
    assert out == {"moved": 3, "to": "server", "chroma_url": chroma_url}
    assert json.loads((memex_home / "settings.json").read_text())["chroma_url"] == chroma_url
    code, out = run(capsys, "--json", "search", "which bike did I buy", "--k", "1")
    assert (
        code == 0
        and "bike" in out["results"][0]["text"]
        and out["results"][0]["similarity"] is not None
    )
    code, out = run(capsys, "--json", "doctor")
    assert out["data"]["vectors"] == 3 and out["data"]["missing_vectors"] == 0

    code, out = run(capsys, "--json", "doctor", "--move-vectors", "embedded")
    assert code == 0 and out == {"moved": 3, "to": "embedded", "chroma_url": ""}
    code, out = run(capsys, "--json", "doctor")
    assert out["ok"] and out["data"]["vectors"] == 3
    code, out = run(capsys, "--json", "search", "birthday", "--k", "1")
    assert "Ana" in out["results"][0]["text"] and out["results"][0]["similarity"] is not None


def test_move_needs_a_reachable_server(capsys, memex_home: Path, monkeypatch):
    monkeypatch.setenv("MEMEX_NO_SERVICE", "1")
    code, out = run(capsys, "--json", "doctor", "--move-vectors", "server")
    assert code == 1 and out["kind"] == "bad_input" and "--chroma-url" in out["error"]
    code, out = run(
        capsys,
        "--json",
        "doctor",
        "--move-vectors",
        "server",
        "--chroma-url",
        f"http://127.0.0.1:{free_port()}",
    )
    assert code == 1 and out["kind"] == "chroma" and "chroma run" in out["error"]
    assert (
        not (memex_home / "settings.json").exists()
        or "chroma_url" not in (memex_home / "settings.json").read_text()
    )
