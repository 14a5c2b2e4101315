"""With the vault on, training, bridge state and a bridge fill leave no memory text at rest.

The same ten sentinels as tests/app/test_vault_cli.py go through import, remember, the
profile, bridge pairing/permit/fill with sentinel names, ask, a one-step `memex train` on
the tiny model, `memex eval` and a generated answer (both read the sealed training set or
adapter back); then no file under MEMEX_HOME holds any of them (raw bytes, side files too).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.app.test_vault_cli import PASS, SENTINELS, vault_env  # noqa: F401 - a fixture
from tests.cli_support import run
from tests.finetune.tiny_model import TinyModel, build_tiny

FAST = ["--steps", "1", "--seq-len", "128", "--batch", "2", "--no-merge"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny(tmp_path_factory.mktemp("tiny-model"))


def _leaks(home: Path) -> list[str]:
    """Every sentinel, as written and lower-cased (site names are normalized), in any file."""
    out = []
    for p in home.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            out += [
                f"{p.relative_to(home)}: {s}"
                for s in SENTINELS
                if s.encode() in data or s.lower().encode() in data
            ]
    return out


def _bridge_fill(home: Path, site: str, browser: str) -> dict:
    from app.bridge.access import RuntimeAccess
    from app.bridge.crypto import HostKey
    from app.bridge.service import BridgeService
    from app.bridge.state import open_state
    from app.runtime import Runtime
    from app.settings import load_settings
    from tests.bridge.bridge_client import SIGNUP_FIELDS, FakeExtension

    settings = load_settings(home=home)
    rt = Runtime(settings)
    state = open_state(settings, rt.vault)
    try:
        svc = BridgeService(
            state=state,
            host_key=HostKey.load_or_create(settings.bridge_dir),
            memory=RuntimeAccess(rt),
        )
        ext = FakeExtension(svc.handle)
        ext.hello()
        assert state.approve(ext.code, browser) is not None
        ext.hello()
        state.permit(site)
        first = ext.request(
            {"type": "fill", "origin": site, "top_origin": site, "fields": SIGNUP_FIELDS}
        )
        assert first["status"] == "confirm", first
        return ext.request({"type": "confirm", "origin": site, "token": first["token"]})
    finally:
        state.close()
        rt.close()


@pytest.mark.slow  # a training child and three model loads: minutes on 2 busy cores
def test_training_and_bridge_leave_no_plaintext(
    capsys,
    vault_env,  # noqa: F811 - a fixture
    memex_home,
    tmp_path,
    monkeypatch,
    tiny,
):
    from memory.vault import is_sealed
    from memory.vault_db import is_plain_sqlite

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text(
        f"My passport number is {SENTINELS[0]}.\n\nMy bank is {SENTINELS[1]}."
    )
    (docs / "chat.jsonl").write_text(
        json.dumps({"text": f"My sister is {SENTINELS[2]}.", "kind": "chat"}) + "\n"
    )
    assert run(capsys, "import", str(docs), "--json")[0] == 0
    assert run(capsys, "profile", "set", "email", f"{SENTINELS[3]}@example.org", "--json")[0] == 0
    # bridge state written before the vault: encrypted in place on its first keyed open
    assert run(capsys, "bridge", "permit", f"https://{SENTINELS[4]}.example", "--json")[0] == 0
    assert is_plain_sqlite(memex_home / "bridge" / "bridge.db")

    code, out = run(capsys, "vault", "enable", "--passphrase-file", str(vault_env), "--json")
    assert code == 0 and out["unlocked"], out
    assert run(capsys, "remember", f"My locker code is {SENTINELS[5]}.", "--json")[0] == 0
    code, out = run(capsys, "bridge", "permit", f"https://{SENTINELS[6]}.example", "--json")
    assert code == 0, out
    assert not is_plain_sqlite(memex_home / "bridge" / "bridge.db")
    code, out = run(capsys, "bridge", "audit", "--json")
    assert code == 0 and SENTINELS[4].lower() in json.dumps(out), out  # migrated, readable

    reply = _bridge_fill(memex_home, f"https://{SENTINELS[7]}.example", f"Laptop {SENTINELS[8]}")
    assert f"{SENTINELS[3]}@example.org" in json.dumps(reply), reply

    monkeypatch.setenv("MEMEX_MAX_ANSWER_TOKENS", "8")
    code, out = run(capsys, "ask", f"Who is {SENTINELS[2]}?", "--json")
    assert code == 0, out

    monkeypatch.setenv("MEMEX_MODEL_PATH", str(tiny.gguf))
    monkeypatch.setenv("MEMEX_THREADS", "1")
    assert run(capsys, "remember", f"My car plate is {SENTINELS[9]}.", "--json")[0] == 0
    code, out = run(capsys, "train", *FAST, "--json")
    assert code == 0 and out["version"] == "v0001", out
    v1 = memex_home / "adapters" / "v0001"
    assert is_sealed(v1 / "dataset.jsonl") and is_sealed(v1 / "adapter.gguf")
    assert not (memex_home / "adapters" / ".work").exists()
    assert not [p for p in (tmp_path / "run").glob("memex-train-*")]  # the RAM work dir is gone
    code, out = run(capsys, "eval", "--json")  # reads the sealed training set and adapter back
    assert code == 0 and out["n"] > 0 and out["version"] == "v0001", out
    monkeypatch.setenv("MEMEX_ANSWER_STRATEGY", "generate")  # chat on base + the sealed adapter
    code, out = run(capsys, "ask", f"Where is the locker {SENTINELS[5]}?", "--json")
    assert code == 0, out
    assert not [p for p in (tmp_path / "run").glob("memex-models-*/*")]  # in-memory copies removed

    assert _leaks(memex_home) == []
    code, out = run(capsys, "vault", "status", "--json")
    assert code == 0 and out["unencrypted"] == [], out


def test_locked_bridge_state_refuses(capsys, vault_env, memex_home, monkeypatch):  # noqa: F811
    from app.bridge.state import BridgeState, open_state
    from app.errors import MemexError
    from app.settings import load_settings
    from memory.vault import is_sealed, read_sealed, unlock_key
    from memory.vault_db import is_plain_sqlite

    assert run(capsys, "bridge", "permit", "https://shop.example", "--json")[0] == 0
    old = memex_home / "adapters" / "v0001"  # trained before the vault (a stand-in)
    (old / "adapter_hf").mkdir(parents=True)
    for name in ("dataset.jsonl", "adapter.gguf", "adapter_hf/adapter_model.safetensors"):
        (old / name).write_text(f"{SENTINELS[0]} in {name}")
    (memex_home / "adapters" / ".work").mkdir()
    (memex_home / "adapters" / ".work" / "dataset.jsonl").write_text(SENTINELS[1])
    code, out = run(capsys, "vault", "enable", "--passphrase-file", str(vault_env), "--json")
    assert code == 0, out
    assert not is_plain_sqlite(memex_home / "bridge" / "bridge.db")  # enable sealed the rest too
    assert all(
        is_sealed(old / n)
        for n in ("dataset.jsonl", "adapter.gguf", "adapter_hf/adapter_model.safetensors")
    )
    assert not (memex_home / "adapters" / ".work").exists() and _leaks(memex_home) == []
    settings = load_settings(home=memex_home)
    key = unlock_key(memex_home, passphrase=PASS)
    assert read_sealed(old / "dataset.jsonl", key) == f"{SENTINELS[0]} in dataset.jsonl".encode()
    assert run(capsys, "vault", "status", "--json")[1]["unencrypted"] == []
    assert run(capsys, "bridge", "permit", "https://other.example", "--json")[0] == 0
    assert run(capsys, "vault", "lock", "--json")[0] == 0
    with pytest.raises(MemexError) as err:
        open_state(settings)
    assert err.value.kind == "locked"
    with pytest.raises(MemexError) as err:
        BridgeState(settings.bridge_dir)  # no key on an encrypted file: locked, never a traceback
    assert err.value.kind == "locked"
    code, out = run(capsys, "bridge", "status", "--json")
    assert code != 0 and out["kind"] == "locked", out
    monkeypatch.setenv("MEMEX_PASSPHRASE", PASS)
    state = open_state(settings)
    try:
        assert sorted(state.sites()) == ["https://other.example", "https://shop.example"]
    finally:
        state.close()


def test_locked_host_answers_locked_then_serves(capsys, vault_env, memex_home, monkeypatch):  # noqa: F811 - a fixture
    """A browser starts the host while memex is locked: each frame says so, none crashes it;
    once memex is unlocked the same host opens the encrypted state and serves."""
    import io

    from app.bridge.framing import encode_frame, read_frame
    from app.bridge.host import serve_locked
    from app.settings import load_settings

    assert run(capsys, "bridge", "permit", "https://shop.example", "--json")[0] == 0
    assert run(capsys, "vault", "enable", "--passphrase-file", str(vault_env), "--json")[0] == 0
    assert run(capsys, "vault", "lock", "--json")[0] == 0
    settings = load_settings(home=memex_home)
    frames = io.BytesIO(
        encode_frame({"id": 1, "type": "hello"}) + encode_frame({"id": 2, "type": "hello"})
    )
    out = io.BytesIO()
    assert serve_locked(settings, frames, out) == 0
    out.seek(0)
    replies = [read_frame(out), read_frame(out)]
    assert [r["kind"] for r in replies] == ["locked", "locked"] and replies[0]["id"] == 1
    assert replies[0]["error"].startswith("memex is locked")

    monkeypatch.setenv("MEMEX_PASSPHRASE", PASS)
    frames, out = io.BytesIO(encode_frame({"id": 3, "type": "hello"})), io.BytesIO()
    assert serve_locked(settings, frames, out) == 0
    out.seek(0)
    assert read_frame(out).get("kind") != "locked"
