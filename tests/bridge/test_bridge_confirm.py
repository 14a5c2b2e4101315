"""First-fill confirmation in the desktop app: the `confirm` op between host and app, and every
refusal."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from app.bridge.access import RuntimeAccess
from app.bridge.agent import AgentServer, AppConfirmer, agent_socket_path
from app.bridge.confirm import (
    ANSWER,
    REQUEST,
    ConfirmAnswer,
    ConfirmError,
    ConfirmRequest,
    mask_value,
    secret_path,
    sign,
)
from app.bridge.crypto import HostKey
from app.bridge.service import BridgeService
from app.bridge.state import BridgeState
from tests.bridge.bridge_client import SIGNUP_FIELDS, FakeExtension, HostProcess, field

SITE = "https://shop.example"
FIELDS = [*SIGNUP_FIELDS, field("phone", "Phone", type="tel")]


class Desk:
    """A stand-in for the app: records what it was asked, answers with a fixed decision."""

    def __init__(self, decision: str = "always", token: str | None = None, before=None) -> None:
        self.decision, self.token, self.before = decision, token, before
        self.asked: list[ConfirmRequest] = []

    def ask(self, request: ConfirmRequest) -> ConfirmAnswer | None:
        self.asked.append(request)
        if self.before is not None:
            self.before()
        if self.decision == "none":
            return None
        if self.decision == "error":
            raise ConfirmError(
                "The memex app closed before you answered; fill again to retry.", "confirm_failed"
            )
        return ConfirmAnswer(self.token or request.token, self.decision)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def state(settings, runtime):
    runtime.memory.profile_set("tel", "+44 20 7946 0000")
    st = BridgeState(settings.bridge_dir)
    st.permit(SITE)
    yield st
    st.close()


def make(settings, runtime, state, desktop, clock=time.time) -> tuple[BridgeService, FakeExtension]:
    svc = BridgeService(
        state=state,
        host_key=HostKey.load_or_create(settings.bridge_dir),
        memory=RuntimeAccess(runtime),
        desktop=desktop,
        clock=clock,
    )
    ext = FakeExtension(svc.handle)
    ext.hello()
    state.approve(ext.code, "laptop")
    return svc, ext


def fill(ext: FakeExtension) -> dict:
    return ext.request({"type": "fill", "origin": SITE, "top_origin": SITE, "fields": FIELDS})


def outcomes(state: BridgeState) -> list[tuple[str, str]]:
    return [
        (e["action"], e["outcome"])
        for e in state.audit_log()
        if e["action"] in ("confirm", "refused", "fill")
    ]


def test_mask_value_hides_identifiers_not_names() -> None:
    assert mask_value("email", "ada@example.org") == "ada@example.org"
    assert mask_value("tel", "+44 20 7946 0000") == "+44••••••••••000"
    assert mask_value("postal-code", "NW1") == "•••"
    assert mask_value(None, "") == ""


def test_allow_once_fills_and_asks_again(settings, runtime, state) -> None:
    desk = Desk("once")
    _svc, ext = make(settings, runtime, state, desk)
    reply = fill(ext)
    assert reply["status"] == "fill" and reply["values"]["email"] == "ada@example.org"
    req = desk.asked[0]
    assert (req.site, req.browser, req.code) == (SITE, "laptop", ext.code)
    shown = {f.ref: f for f in req.fields}
    assert shown["email"].preview == "ada@example.org" and shown["given"].label == "First name"
    assert shown["phone"].preview == "+44••••••••••000"  # masked in the dialog, filled in full
    assert reply["values"]["phone"] == "+44 20 7946 0000"
    assert shown["pw"].sensitive and shown["pw"].preview == "" and shown["card"].preview == ""
    assert "7946" not in json.dumps(req.to_json())
    assert not state.confirmed(SITE, ext.public)
    assert fill(ext)["status"] == "fill" and len(desk.asked) == 2  # once means once
    assert ("confirm", "once") in outcomes(state)


def test_always_allow_records_the_site(settings, runtime, state) -> None:
    desk = Desk("always")
    _svc, ext = make(settings, runtime, state, desk)
    assert fill(ext)["values"]["given"] == "Ada"
    assert state.confirmed(SITE, ext.public)
    assert fill(ext)["status"] == "fill" and len(desk.asked) == 1
    assert outcomes(state)[:3] == [("fill", "ok"), ("fill", "ok"), ("confirm", "always")]
    assert state.confirmations() == {SITE: ["laptop"]}
    state.revoke_pairing("laptop")  # a revoked browser is no longer listed
    assert state.confirmations() == {}


@pytest.mark.parametrize(
    "decision, kind, outcome",
    [
        ("deny", "denied", "denied"),
        ("timeout", "confirm_timeout", "confirm-timeout"),
        ("error", "confirm_failed", "confirm-failed"),
    ],
)
def test_refusals_fill_nothing_and_are_audited(
    settings, runtime, state, decision, kind, outcome
) -> None:
    svc, ext = make(settings, runtime, state, Desk(decision))
    reply = fill(ext)
    assert reply["action"] == "error" and reply["kind"] == kind and reply["error"].endswith(".")
    assert "Ada" not in json.dumps(reply)
    assert not state.confirmed(SITE, ext.public)
    assert outcomes(state)[0] == ("refused", outcome)
    assert not svc._confirms  # the token is gone: nothing can confirm it later
    # the extension cannot reuse a token it never saw, nor a forged one
    assert ext.request({"type": "confirm", "origin": SITE, "token": "x"})["kind"] == "bad_token"


def test_unknown_or_expired_token_is_refused(settings, runtime, state) -> None:
    svc, ext = make(settings, runtime, state, Desk("always", token="not-the-token"))
    assert fill(ext)["kind"] == "bad_token" and not state.confirmed(SITE, ext.public)
    clock = Clock()
    late = Desk("always", before=lambda: setattr(clock, "now", clock.now + svc.desktop_ttl_s + 5))
    _svc2, ext2 = make(settings, runtime, state, late, clock=clock)
    reply = fill(ext2)
    assert reply["kind"] == "bad_token" and not state.confirmed(SITE, ext2.public)
    assert [o for o in outcomes(state) if o[0] == "refused"] == [("refused", "bad-token")] * 2


def test_without_the_app_the_extension_confirms(settings, runtime, state) -> None:
    _svc, ext = make(settings, runtime, state, AppConfirmer(settings))  # no app socket
    first = fill(ext)
    assert first["status"] == "confirm" and "values" not in first
    done = ext.request({"type": "confirm", "origin": SITE, "token": first["token"]})
    assert done["status"] == "fill" and done["values"]["family"] == "Lovelace"


def test_app_without_a_confirmer_leaves_it_to_the_extension(settings, runtime, state) -> None:
    with AgentServer(settings, RuntimeAccess(runtime)):
        _svc, ext = make(settings, runtime, state, AppConfirmer(settings))
        assert fill(ext)["status"] == "confirm"


def _sleeping(seconds: float, decision: str = "always"):
    def confirm(req: ConfirmRequest) -> ConfirmAnswer:
        time.sleep(seconds)
        return ConfirmAnswer(req.token, decision)  # type: ignore[arg-type]

    return confirm


def test_through_the_app_socket_allow_and_deny(settings, runtime, state) -> None:
    asked: list[ConfirmRequest] = []

    def confirm(req: ConfirmRequest) -> ConfirmAnswer:
        asked.append(req)
        return ConfirmAnswer(req.token, "deny" if len(asked) == 1 else "always")

    with AgentServer(settings, RuntimeAccess(runtime), confirmer=confirm) as server:
        assert secret_path(server.path).stat().st_mode & 0o777 == 0o600
        _svc, ext = make(settings, runtime, state, AppConfirmer(settings))
        assert fill(ext)["kind"] == "denied"
        reply = fill(ext)
        assert reply["status"] == "fill" and reply["values"]["email"] == "ada@example.org"
        assert state.confirmed(SITE, ext.public) and asked[1].browser == "laptop"
    assert not secret_path(server.path).exists()


def test_app_that_never_answers_is_a_timeout(settings, runtime, state) -> None:
    with AgentServer(settings, RuntimeAccess(runtime), confirmer=_sleeping(4.0)):
        confirmer = AppConfirmer(settings)
        confirmer.grace_s = 0.2
        svc, ext = make(settings, runtime, state, confirmer)
        svc.desktop_ttl_s = 1.0
        t0 = time.monotonic()
        assert fill(ext)["kind"] == "confirm_timeout"
        assert (
            time.monotonic() - t0 < 3.5
        )  # the host stopped waiting at the TTL, not at the app's leisure
        assert not state.confirmed(SITE, ext.public)


def _raw(path: Path, message: dict) -> bytes:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(path))
    try:
        s.sendall(json.dumps(message).encode() + b"\n")
        with s.makefile("rb") as fh:
            return fh.readline()
    finally:
        s.close()


def _denier(asked: list[ConfirmRequest]):
    def confirm(request: ConfirmRequest) -> ConfirmAnswer:
        asked.append(request)
        return ConfirmAnswer(request.token, "deny")

    return confirm


def test_a_stranger_without_the_secret_gets_no_dialog(settings, runtime) -> None:
    asked: list[ConfirmRequest] = []
    body = ConfirmRequest(
        token="t", site="https://evil.example", browser="laptop", code="X", ttl_s=5
    ).to_json()
    with AgentServer(settings, RuntimeAccess(runtime), confirmer=_denier(asked)) as server:
        for mac in (None, "00" * 32, sign(b"\x00" * 32, REQUEST, body)):
            reply = json.loads(_raw(server.path, {"op": "confirm", "request": body, "mac": mac}))
            assert reply["kind"] == "unauthenticated"
        # a correctly signed request with a signature meant for an answer is refused too
        secret = secret_path(server.path).read_bytes()
        wrong_purpose = sign(secret, ANSWER, body)
        reply = json.loads(
            _raw(server.path, {"op": "confirm", "request": body, "mac": wrong_purpose})
        )
        assert reply["kind"] == "unauthenticated"
    assert asked == []


def test_a_stranger_posing_as_the_app_cannot_confirm(settings, runtime, state) -> None:
    """Someone else answers on the app's socket path: the answer's MAC is wrong, the fill is
    refused."""
    path = agent_socket_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        srv.bind(str(path))
    finally:
        os.umask(old)
    srv.listen(1)
    fd = os.open(secret_path(path), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"\x01" * 32)
    os.close(fd)

    def impostor() -> None:
        conn, _ = srv.accept()
        with conn, conn.makefile("rb") as fh:
            req = json.loads(fh.readline())
            answer = {"token": req["request"]["token"], "decision": "always"}
            conn.sendall(
                json.dumps({"result": answer, "mac": sign(b"\x02" * 32, ANSWER, answer)}).encode()
                + b"\n"
            )

    thread = threading.Thread(target=impostor, daemon=True)
    thread.start()
    try:
        _svc, ext = make(settings, runtime, state, AppConfirmer(settings))
        reply = fill(ext)
        assert reply["kind"] == "confirm_unauthenticated" and "Ada" not in json.dumps(reply)
        assert not state.confirmed(SITE, ext.public)
    finally:
        thread.join(10)
        srv.close()


SYSTEM_PYTHON = Path("/usr/bin/python3")
# Run as another user: asks for the profile and a confirmation; prints what came back.
STRANGER = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
try:
    s.sendall(b'{"op": "profile"}\\n{"op": "confirm"}\\n')
    print(repr(s.makefile("rb").readline()))
except (BrokenPipeError, ConnectionResetError):  # the app hung up first
    print(repr(b""))
"""


@pytest.mark.skipif(
    not hasattr(os, "getuid") or os.getuid() != 0 or not SYSTEM_PYTHON.exists(),
    reason="needs root (to act as another user) and /usr/bin/python3",
)
def test_a_process_of_another_user_is_not_served(settings, runtime, monkeypatch) -> None:
    """Even with the socket's folder opened up by mistake, SO_PEERCRED turns another uid away."""
    import shutil
    import tempfile

    run = Path(tempfile.mkdtemp(prefix="memex-run-"))  # outside pytest's owner-only tmp tree
    os.chmod(run, 0o711)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    asked: list[ConfirmRequest] = []
    try:
        with AgentServer(settings, RuntimeAccess(runtime), confirmer=_denier(asked)) as server:
            os.chmod(server.path.parent, 0o711)
            os.chmod(server.path, 0o666)
            out = subprocess.run(
                [str(SYSTEM_PYTHON), "-c", STRANGER, str(server.path)],
                user=65534,
                check=False,
                capture_output=True,
                text=True,
                timeout=60,
                cwd="/",
            )
            assert out.returncode == 0, out.stderr
            assert out.stdout.strip() == "b''"  # closed without a word: no profile, no dialog
    finally:
        shutil.rmtree(run, ignore_errors=True)
    assert asked == []


def test_real_host_process_asks_the_running_app(settings, home: Path, runtime, state) -> None:
    asked: list[ConfirmRequest] = []

    def confirm(req: ConfirmRequest) -> ConfirmAnswer:
        asked.append(req)
        return ConfirmAnswer(req.token, "once")

    with AgentServer(settings, RuntimeAccess(runtime), confirmer=confirm):
        host = HostProcess(home)
        try:
            ext = FakeExtension(host)
            ext.hello()
            state.approve(ext.code, "pytest chromium")
            reply = fill(ext)
            assert reply["status"] == "fill" and reply["values"]["given"] == "Ada"
            assert asked and asked[0].browser == "pytest chromium" and asked[0].site == SITE
        finally:
            assert host.close() == 0
