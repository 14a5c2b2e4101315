"""`memex vault`: the contract scripts rely on, locked refusals, kill -9 safety, no plaintext at
rest."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_support import run

PASS = "correct horse battery"
SENTINELS = [f"QZV{i}X{i * 104729}SENT" for i in range(10)]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def vault_env(monkeypatch, embedder, tmp_path):
    monkeypatch.setattr("memory.store.Embedder", lambda *a, **k: embedder)
    monkeypatch.setenv("MEMEX_MAX_ANSWER_TOKENS", "16")
    monkeypatch.setenv("MEMEX_N_CTX", "1024")
    monkeypatch.setenv("MEMEX_INBOX_USE_MODEL", "false")
    monkeypatch.delenv("MEMEX_PASSPHRASE", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir(mode=0o700)
    pw = tmp_path / "pw.txt"
    pw.write_text(PASS + "\n")
    return pw


def _leaks(home: Path) -> list[str]:
    out = []
    for p in home.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            out += [f"{p.relative_to(home)}: {s}" for s in SENTINELS if s.encode() in data]
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_vault_end_to_end_leaves_no_plaintext(capsys, vault_env, memex_home, tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text(
        f"My passport number is {SENTINELS[0]}.\n\nMy bank is {SENTINELS[1]}."
    )
    (docs / "health.md").write_text(
        f"# Health\n\nMy doctor is Dr {SENTINELS[2]}.\n\n# Home\n\nI live at {SENTINELS[3]}."
    )
    (docs / "chat.jsonl").write_text(
        json.dumps({"text": f"My sister is {SENTINELS[4]}.", "kind": "chat"}) + "\n"
    )
    assert run(capsys, "import", str(docs), "--json")[0] == 0
    assert run(capsys, "remember", f"My locker code is {SENTINELS[5]}.", "--json")[0] == 0
    assert run(capsys, "profile", "set", "email", f"{SENTINELS[6]}@example.org", "--json")[0] == 0

    code, out = run(capsys, "vault", "enable", "--passphrase-file", str(vault_env), "--json")
    assert code == 0 and out["enabled"] and out["database"] == "encrypted" and out["unlocked"]
    assert run(capsys, "remember", f"My car plate is {SENTINELS[7]}.", "--json")[0] == 0
    (docs / "late.txt").write_text(f"My wifi password is {SENTINELS[8]}.")
    assert run(capsys, "import", str(docs / "late.txt"), "--json")[0] == 0
    code, out = run(capsys, "search", "passport number", "--json")
    assert code == 0 and SENTINELS[0] in out["results"][0]["text"]
    monkeypatch.setenv("MEMEX_ANSWER_STRATEGY", "generate")  # real llama.cpp on the bundled model
    code, out = run(capsys, "ask", f"Who is {SENTINELS[4]}?", "--json")
    assert code == 0 and out["citations"]
    assert run(capsys, "remember", f"Sentinel nine {SENTINELS[9]}.", "--json")[0] == 0
    assert _leaks(memex_home) == []

    code, out = run(capsys, "vault", "status", "--json")
    assert code == 0 and out["enabled"] and not out["locked"] and out["kdf"]["memory_kib"] >= 65536
    assert out["unencrypted"] == []


def test_locked_wrong_and_changed_passphrase(capsys, vault_env, memex_home, tmp_path, monkeypatch):
    run(capsys, "remember", "The spare key is under the blue pot.", "--json")
    assert run(capsys, "vault", "enable", "--passphrase-file", str(vault_env), "--json")[0] == 0
    assert run(capsys, "vault", "lock", "--json") == (0, {"locked": True, "was_unlocked": True})

    code, out = run(capsys, "search", "spare key", "--json")
    assert code != 0 and out["kind"] == "locked" and out["error"].startswith("memex is locked")
    assert run(capsys, "vault", "status", "--json")[1]["locked"] is True
    code, out = run(capsys, "--passphrase-file", str(vault_env), "search", "spare key", "--json")
    assert code == 0 and "blue pot" in out["results"][0]["text"]

    before = {p.name: _sha(p) for p in memex_home.iterdir() if p.is_file()}
    monkeypatch.setenv("MEMEX_PASSPHRASE", "not the passphrase")
    code, out = run(capsys, "search", "spare key", "--json")
    assert code != 0 and out == {
        "error": "The passphrase is wrong; nothing was changed.",
        "kind": "wrong_passphrase",
    }
    code, out = run(capsys, "vault", "unlock", "--json")
    assert code != 0 and out["kind"] == "wrong_passphrase"
    monkeypatch.setenv("MEMEX_NEW_PASSPHRASE", "a brand new passphrase")
    code, out = run(capsys, "vault", "change-passphrase", "--json")
    assert code != 0 and out["kind"] == "wrong_passphrase"
    assert {p.name: _sha(p) for p in memex_home.iterdir() if p.is_file()} == before

    db_sha = _sha(memex_home / "memex.db")
    monkeypatch.setenv("MEMEX_PASSPHRASE", PASS)
    code, out = run(capsys, "vault", "change-passphrase", "--json")
    assert code == 0 and out == {"changed": True}
    assert _sha(memex_home / "memex.db") == db_sha  # only the key was rewrapped
    assert run(capsys, "search", "spare key", "--json")[1]["kind"] == "wrong_passphrase"
    monkeypatch.setenv("MEMEX_PASSPHRASE", "a brand new passphrase")
    assert run(capsys, "search", "spare key", "--json")[0] == 0
    monkeypatch.delenv("MEMEX_PASSPHRASE")
    code, out = run(capsys, "vault", "enable", "--passphrase-file", str(vault_env), "--json")
    assert code != 0 and out["kind"] == "vault_on"


def test_local_api_refuses_when_locked(vault_env, memex_home, embedder):
    from app.runtime import Runtime
    from app.server import MemexAPIServer
    from app.settings import load_settings
    from memory import MemoryStore, vault
    from memory.vault_db import encrypt_database
    from tests.app.test_serve import CHAT, request

    with MemoryStore(memex_home, embedder=embedder) as s:
        s.remember("My cat is called Pixel.")
    key = vault.new_data_key()
    encrypt_database(memex_home, key, vault.wrap_key(key, PASS))
    rt = Runtime(load_settings(home=memex_home, inbox_use_model=False))
    server = MemexAPIServer(rt, 0)
    server.start_background()
    try:
        status, body, _ = request(server, "POST", "/v1/chat/completions", CHAT)
    finally:
        server.stop()
        rt.close()
    assert status == 423 and "memex is locked" in json.dumps(body)


def test_long_lived_process_locks_itself_when_idle(vault_env, memex_home, embedder, monkeypatch):
    """A server or the app that held the key closes the store after vault_auto_lock_minutes
    unused."""
    import time

    from app.errors import MemexError
    from app.runtime import Runtime
    from app.settings import load_settings
    from memory import MemoryStore, vault
    from memory.vault_db import encrypt_database

    MemoryStore(memex_home, embedder=embedder).close()
    key = vault.new_data_key()
    encrypt_database(memex_home, key, vault.wrap_key(key, PASS))
    rt = Runtime(load_settings(home=memex_home, vault_auto_lock_minutes=0.002))  # 0.12 s
    try:
        rt.vault.hold(key)
        assert rt.memory.count() == 0
        time.sleep(0.3)
        with pytest.raises(MemexError) as err:
            rt.memory.count()
        assert err.value.kind == "locked" and rt._memory is None
    finally:
        rt.close()


def _cli(
    home: Path, *args: str, kill_at: str = "", env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = dict(os.environ, MEMEX_NO_SERVICE="1", PYTHONPATH=str(REPO), **(env_extra or {}))
    if kill_at:
        env["MEMEX_VAULT_TEST_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--home", str(home), "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_kill_9_during_enable_and_change_passphrase(capsys, vault_env, memex_home, tmp_path):
    for i in range(5):
        run(capsys, "remember", f"Fact number {i}: the {i}th drawer holds socks.", "--json")
    template = tmp_path / "template"
    shutil.copytree(memex_home, template)
    # every step is interrupted in tests/memory/test_vault.py; here a real SIGKILL before the
    # commit, right after it, and halfway through wiping the plaintext
    for step in ("exported", "committed", "zeroed"):
        shutil.rmtree(memex_home)
        shutil.copytree(template, memex_home)
        proc = _cli(
            memex_home, "vault", "enable", "--passphrase-file", str(vault_env), kill_at=step
        )
        assert proc.returncode == -9, (step, proc.stdout, proc.stderr)
        code, out = run(capsys, "vault", "status", "--json")
        assert code == 0, (step, out)
        if not out["enabled"]:  # killed before the commit: plaintext intact, enable again
            assert out["database"] == "plain"
            assert (
                run(capsys, "vault", "enable", "--passphrase-file", str(vault_env), "--json")[0]
                == 0
            )
        code, out = run(capsys, "vault", "status", "--json")
        assert (
            out["database"] == "encrypted" and not (memex_home / "memex.db.vault-tmp").exists()
        ), step
        assert run(capsys, "--passphrase-file", str(vault_env), "search", "drawer socks", "--json")[
            1
        ]["results"]

    new = tmp_path / "new.txt"
    new.write_text("another long passphrase")
    proc = _cli(
        memex_home,
        "vault",
        "change-passphrase",
        "--passphrase-file",
        str(vault_env),
        "--new-passphrase-file",
        str(new),
        kill_at="rewrapped",
    )
    assert proc.returncode == -9, (proc.stdout, proc.stderr)
    code, out = run(capsys, "--passphrase-file", str(vault_env), "search", "drawer", "--json")
    assert code == 0 and out["results"], out  # the old passphrase still opens it
