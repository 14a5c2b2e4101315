"""Locked, the other front-ends refuse with "memex is locked" too: the bridge and MCP."""

from __future__ import annotations

from pathlib import Path

import pytest

PASS = "correct horse battery"


@pytest.fixture
def locked_home(memex_home: Path, embedder, monkeypatch, tmp_path) -> Path:
    from memory import MemoryStore, vault
    from memory.vault_db import encrypt_database

    monkeypatch.delenv("MEMEX_PASSPHRASE", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir(mode=0o700)
    monkeypatch.setattr("memory.store.Embedder", lambda *a, **k: embedder)
    with MemoryStore(memex_home, embedder=embedder) as s:
        s.profile_set("email", "ada@example.org")
    key = vault.new_data_key()
    encrypt_database(memex_home, key, vault.wrap_key(key, PASS))
    return memex_home


def test_bridge_fill_says_locked(locked_home):
    from app.bridge.access import RuntimeAccess
    from app.bridge.crypto import HostKey
    from app.bridge.service import BridgeService
    from app.bridge.state import BridgeState
    from app.runtime import Runtime
    from app.settings import load_settings
    from tests.bridge.bridge_client import SIGNUP_FIELDS, FakeExtension

    settings = load_settings(home=locked_home)
    rt = Runtime(settings)
    state = BridgeState(settings.bridge_dir)
    try:
        svc = BridgeService(
            state=state,
            host_key=HostKey.load_or_create(settings.bridge_dir),
            memory=RuntimeAccess(rt),
        )
        ext = FakeExtension(svc.handle)
        ext.hello()
        state.approve(ext.code, "laptop")
        ext.hello()
        state.permit("https://shop.example")
        first = ext.request(
            {
                "type": "fill",
                "origin": "https://shop.example",
                "top_origin": "https://shop.example",
                "fields": SIGNUP_FIELDS,
            }
        )
        assert first["status"] == "confirm"  # the first fill on a site asks; the values come after
        reply = ext.request(
            {"type": "confirm", "origin": "https://shop.example", "token": first["token"]}
        )
        assert reply["kind"] == "locked" and reply["error"].startswith("memex is locked")
    finally:
        state.close()
        rt.close()


def test_mcp_tools_say_locked(locked_home):
    from app.errors import MemexError
    from app.mcp.engine import RuntimeEngine
    from app.runtime import Runtime
    from app.settings import load_settings

    rt = Runtime(load_settings(home=locked_home))
    try:
        with pytest.raises(MemexError, match="memex is locked"):
            RuntimeEngine(rt).search("email")
    finally:
        rt.close()
