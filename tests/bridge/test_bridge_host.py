"""The real host process (`memex bridge host`) over native-messaging frames, with and without the
app."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from app.bridge.access import RuntimeAccess
from app.bridge.agent import AgentClient, AgentServer, AgentUnavailable, agent_socket_path
from app.bridge.state import BridgeState
from tests.bridge.bridge_client import SIGNUP_FIELDS, FakeExtension, HostProcess

SITE = "http://127.0.0.1:8000"


def _frame(body: bytes) -> bytes:
    return struct.pack("=I", len(body)) + body


@pytest.fixture
def host(home: Path, runtime):
    runtime.close()  # the host opens the store itself; the test's runtime is not "the app"
    proc = HostProcess(home)
    yield proc
    proc.close()


def _pair_and_permit(settings, host: HostProcess) -> FakeExtension:
    ext = FakeExtension(host)
    ext.hello()
    state = BridgeState(settings.bridge_dir)
    try:
        state.approve(ext.code, "pytest")
        state.permit(SITE)
        state.confirm(SITE, ext.public)
    finally:
        state.close()
    return ext


def _fill(ext: FakeExtension) -> dict:
    return ext.request(
        {"type": "fill", "origin": SITE, "top_origin": SITE, "fields": SIGNUP_FIELDS}
    )


def test_malformed_and_oversized_frames_leave_the_host_running(host: HostProcess) -> None:
    host.send_raw(_frame(b"{not json"))
    assert host.read()["kind"] == "malformed"
    host.send_raw(_frame(b"\xff\xfe"))
    assert host.read()["kind"] == "malformed"
    host.send_raw(_frame(b"[1, 2]"))
    assert host.read()["kind"] == "malformed"
    big = b'{"action":"hello","pad":"' + b"a" * (1024 * 1024 + 10) + b'"}'
    host.send_raw(_frame(big))
    reply = host.read()
    assert reply["kind"] == "too_large" and "limit" in reply["error"]
    # still in sync and serving
    assert FakeExtension(host).hello()["action"] == "hello"


def test_truncated_frame_ends_the_host_cleanly(host: HostProcess) -> None:
    host.send_raw(struct.pack("=I", 100) + b'{"action":')
    assert host.proc.stdin is not None
    host.proc.stdin.close()
    assert host.read()["kind"] == "truncated"
    assert host.proc.wait(timeout=30) == 1


def test_host_fills_from_the_store_without_the_app(settings, host: HostProcess) -> None:
    ext = _pair_and_permit(settings, host)
    reply = _fill(ext)
    assert reply["status"] == "fill"
    assert reply["values"] == {"given": "Ada", "family": "Lovelace", "email": "ada@example.org"}
    # a change made by another process (the CLI) is seen by the next fill: no stale cache
    subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "--home",
            str(settings.home),
            "profile",
            "set",
            "email",
            "ada@new.example",
            "--json",
        ],
        check=True,
        capture_output=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert _fill(ext)["values"]["email"] == "ada@new.example"
    assert host.close() == 0


class _Counting(RuntimeAccess):
    calls = 0

    def profile(self) -> dict[str, str]:
        type(self).calls += 1
        return super().profile()


def test_host_goes_through_the_running_app(settings, home: Path) -> None:
    from app.runtime import Runtime

    app_runtime = Runtime(settings)  # "the app": owns a store and serves the agent socket
    app_runtime.memory.profile_set("email", "via-app@example.org")
    access = _Counting(app_runtime)
    with AgentServer(settings, access) as server:
        path = server.path
        assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
        host = HostProcess(home)
        try:
            ext = _pair_and_permit(settings, host)
            reply = _fill(ext)
            assert reply["values"]["email"] == "via-app@example.org"
            assert _Counting.calls >= 1  # the host asked the app, not its own store
            app_runtime.memory.profile_set("email", "changed-in-app@example.org")
            assert _fill(ext)["values"]["email"] == "changed-in-app@example.org"
        finally:
            host.close()
    # the app quit: the same host would fall back on the store; a new host does
    assert not path.exists()
    host = HostProcess(home)
    try:
        ext = FakeExtension(host, key=ext.key)  # the same paired browser after a browser restart
        assert ext.hello()["paired"] is True
        calls = _Counting.calls
        assert _fill(ext)["values"]["email"] == "changed-in-app@example.org"
        assert _Counting.calls == calls
    finally:
        host.close()
        app_runtime.close()


def test_agent_client_refuses_sockets_others_could_open(tmp_path: Path) -> None:
    path = tmp_path / "open.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    try:
        os.chmod(path, 0o666)
        with pytest.raises(AgentUnavailable, match="owner-only"):
            AgentClient(path).call("ping")
        with pytest.raises(AgentUnavailable):
            AgentClient(tmp_path / "missing.sock").call("ping")
    finally:
        srv.close()


def test_agent_rejects_malformed_requests(settings, runtime) -> None:
    with AgentServer(settings, RuntimeAccess(runtime)) as server:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(server.path))
        s.sendall(b"not json\n" + json.dumps({"op": "delete-everything"}).encode() + b"\n")
        with s.makefile("rb") as fh:
            assert json.loads(fh.readline())["kind"] == "malformed"
            assert json.loads(fh.readline())["kind"] == "malformed"
        s.close()
        assert AgentClient(server.path).call("profile")["email"] == "ada@example.org"
        # a second app on the same data folder does not steal the socket
        with pytest.raises(AgentUnavailable, match="already serves"):
            AgentServer(settings, RuntimeAccess(runtime)).start()
    assert agent_socket_path(settings) == server.path


@pytest.mark.slow
def test_freetext_draft_is_grounded_in_memory_and_never_a_fill_value(home: Path, runtime) -> None:
    from app.bridge.crypto import HostKey
    from app.bridge.service import BridgeService
    from app.runtime import Runtime
    from app.settings import load_settings

    runtime.close()
    settings = load_settings(home=home, max_answer_tokens=24)  # a short draft keeps the test quick
    runtime = Runtime(settings)
    runtime.memory.remember("I am a mathematician who writes notes on Babbage's Analytical Engine.")
    state = BridgeState(settings.bridge_dir)
    service = BridgeService(
        state=state,
        host_key=HostKey.load_or_create(settings.bridge_dir),
        memory=RuntimeAccess(runtime),
    )
    ext = FakeExtension(service.handle)
    ext.hello()
    state.approve(ext.code, "pytest")
    state.permit(SITE)
    state.confirm(SITE, ext.public)
    filled = _fill(ext)
    assert "about" not in filled["values"] and filled["freetext"] == ["about"]
    question = "Tell us about your work on the Analytical Engine"
    draft = ext.request({"type": "draft", "origin": SITE, "ref": "about", "question": question})
    assert draft["status"] == "draft" and draft["ref"] == "about" and not draft["abstained"]
    assert draft["text"].strip() and draft["citations"]
    # nothing remembered: no made-up draft
    empty = ext.request(
        {"type": "draft", "origin": SITE, "ref": "about", "question": "What is your dog's name?"}
    )
    assert empty["abstained"] and empty["text"] == ""
    assert state.audit_log(1)[0]["action"] == "draft"
    state.close()
    runtime.close()
