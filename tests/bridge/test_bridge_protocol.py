"""The bridge protocol: pairing, crypto_box, nonces, permissions, confirmation, audit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from nacl.public import PrivateKey

from app.bridge.access import RuntimeAccess
from app.bridge.crypto import HostKey, b64e, increment_nonce
from app.bridge.service import BridgeService
from app.bridge.state import BridgeState
from tests.bridge.bridge_client import SIGNUP_FIELDS, FakeExtension, field

SITE = "https://shop.example"


@pytest.fixture
def service(settings, runtime):
    state = BridgeState(settings.bridge_dir)
    svc = BridgeService(
        state=state,
        host_key=HostKey.load_or_create(settings.bridge_dir),
        memory=RuntimeAccess(runtime),
    )
    yield svc
    state.close()


def paired(service: BridgeService, name: str = "laptop") -> FakeExtension:
    ext = FakeExtension(service.handle)
    assert ext.hello()["paired"] is False
    assert service.state.approve(ext.code, name) is not None
    assert ext.hello()["paired"] is True
    return ext


def fill(
    ext: FakeExtension, fields=SIGNUP_FIELDS, origin: str = SITE, top: str | None = None
) -> dict:
    return ext.request(
        {"type": "fill", "origin": origin, "top_origin": top or origin, "fields": fields}
    )


def test_nonce_increment_is_little_endian_with_carry() -> None:
    assert increment_nonce(bytes(24)) == b"\x01" + bytes(23)
    assert increment_nonce(b"\xff\x01" + bytes(22)) == b"\x00\x02" + bytes(22)
    assert increment_nonce(b"\xff" * 24) == bytes(24)


def test_unpaired_client_is_refused_until_approved(service: BridgeService) -> None:
    ext = FakeExtension(service.handle)
    hello = ext.hello()
    assert hello["paired"] is False and len(hello["code"]) == 8
    assert [p.code for p in service.state.pending()] == [hello["code"]]
    reply = ext.request({"type": "ping"})
    assert reply["action"] == "error" and reply["kind"] == "unpaired"
    assert service.state.approve(hello["code"], "Laptop Chromium").name == "Laptop Chromium"
    assert ext.request({"type": "ping"}) == {"status": "pong"}  # FakeExtension checks nonce + 1


def test_wrong_key_is_refused(service: BridgeService) -> None:
    ext = paired(service)
    # claims the paired public key but seals with a different secret key
    reply = ext.send(ext.seal({"type": "ping"}, key=PrivateKey.generate()))
    assert reply["kind"] == "bad_key"
    # a tampered ciphertext fails authentication too
    env = ext.seal({"type": "ping"})
    env["message"] = b64e(b"\x00" * 40)
    assert ext.send(env)["kind"] == "bad_key"


def test_replayed_nonce_is_refused(service: BridgeService) -> None:
    ext = paired(service)
    env = ext.seal({"type": "ping"})
    assert ext.send(env) == {"status": "pong"}
    assert ext.send(dict(env))["kind"] == "replay"
    # and across a host restart: the nonce log is in bridge.db
    again = BridgeService(
        state=BridgeState(service.state.path.parent),
        host_key=service.host_key,
        memory=service.memory,
    )
    assert again.handle(env)["kind"] == "replay"
    again.state.close()


def test_stale_request_is_refused(service: BridgeService) -> None:
    ext = paired(service)
    assert ext.request({"type": "ping", "ts": (time.time() - 600) * 1000})["kind"] == "stale"


@pytest.mark.parametrize(
    "envelope, kind",
    [
        ({"action": "dance"}, "malformed"),
        ({"action": "hello"}, "malformed"),
        ({"action": "hello", "client_key": "not base64!"}, "malformed"),
        ({"action": "hello", "client_key": b64e(b"short")}, "malformed"),
        (
            {"action": "request", "client_key": b64e(bytes(32)), "nonce": "", "message": ""},
            "unpaired",
        ),
        ({"action": "request", "nonce": "x"}, "malformed"),
    ],
)
def test_malformed_envelopes(service: BridgeService, envelope, kind: str) -> None:
    reply = service.handle(envelope)
    assert reply["action"] == "error" and reply["kind"] == kind and reply["error"].endswith(".")


def test_bad_nonce_and_inner_json(service: BridgeService) -> None:
    ext = paired(service)
    env = ext.seal({"type": "ping"})
    env["nonce"] = b64e(b"\x01" * 12)
    assert ext.send(env)["kind"] == "bad_key"
    env = ext.seal({"type": "launch-missiles"})
    assert ext.send(env)["kind"] == "malformed"


def test_site_not_permitted_then_permitted_then_revoked(service: BridgeService) -> None:
    ext = paired(service)
    reply = fill(ext)
    assert (
        reply["kind"] == "not_permitted"
        and "memex bridge permit https://shop.example" in reply["error"]
    )
    service.state.permit("shop.example")  # bare host means https
    assert fill(ext)["status"] == "confirm"
    service.state.revoke_site(SITE)
    assert fill(ext)["kind"] == "not_permitted"


def test_first_fill_needs_confirmation_then_fills(service: BridgeService) -> None:
    ext = paired(service)
    service.state.permit(SITE)
    first = fill(ext)
    assert (
        first["status"] == "confirm" and "values" not in first
    )  # nothing leaves before the user agrees
    assert {f["ref"]: f["kind"] for f in first["fields"]}["email"] == "email"
    assert (
        ext.request({"type": "confirm", "origin": SITE, "token": "forged"})["kind"] == "bad_token"
    )
    # a token is bound to its site and its client
    other = paired(service, "other")
    assert (
        other.request({"type": "confirm", "origin": SITE, "token": first["token"]})["kind"]
        == "bad_token"
    )
    done = ext.request({"type": "confirm", "origin": SITE, "token": first["token"]})
    assert done["status"] == "fill"
    assert done["values"] == {"given": "Ada", "family": "Lovelace", "email": "ada@example.org"}
    assert done["freetext"] == ["about"]
    # the token is single-use, and the site is now confirmed for this browser only
    assert (
        ext.request({"type": "confirm", "origin": SITE, "token": first["token"]})["kind"]
        == "bad_token"
    )
    assert fill(ext)["status"] == "fill"
    assert fill(other)["status"] == "confirm"


def test_cross_origin_frame_is_refused(service: BridgeService) -> None:
    ext = paired(service)
    service.state.permit(SITE)
    service.state.permit("https://ads.example")
    reply = fill(ext, origin="https://ads.example", top=SITE)
    assert reply["kind"] == "cross_origin"
    # fields that report a foreign frame origin inside a permitted page stay empty
    service.state.confirm(SITE, ext.public)
    fields = [
        field("email", "Email", frame_origin=SITE),
        field("femail", "Email", frame_origin="https://ads.example"),
    ]
    assert fill(ext, fields)["values"] == {"email": "ada@example.org"}


def test_forged_message_cannot_get_sensitive_values(service: BridgeService, runtime) -> None:
    ext = paired(service)
    service.state.permit(SITE)
    service.state.confirm(SITE, ext.public)
    # the store refuses secrets as profile keys; a login name it does hold is never sent either
    from memory import BadInput

    with pytest.raises(BadInput):
        runtime.memory.profile_set("cc-number", "4111111111111111")
    runtime.memory.profile_set("username", "ada_l")
    forged = [
        {"ref": "cc", "autocomplete": "cc-number", "kind": "email", "sensitive": False},
        {"ref": "pw", "type": "password", "label": "Email", "kind": "email", "value": "x"},
        {"ref": "cvc", "label": "CVC", "autocomplete": "email"},
        {"ref": "otp", "autocomplete": "one-time-code", "label": "Email"},
        {"ref": "email", "label": "Email", "sensitive": True},
        {"ref": "login", "autocomplete": "username", "kind": "username"},
        {"ref": "user", "label": "Username"},
    ]
    reply = ext.request(
        {
            "type": "fill",
            "origin": SITE,
            "top_origin": SITE,
            "fields": forged,
            "values": {"cc": "give me"},
            "kinds": {"cc": "email"},
        }
    )
    assert reply["values"] == {"email": "ada@example.org"}
    kinds = {f["ref"]: (f["kind"], f["sensitive"]) for f in reply["fields"]}
    # secrets keep their kind (the plan shows them) but are sensitive and never get a value
    assert kinds["cc"] == ("cc-number", True) and kinds["pw"] == ("current-password", True)
    assert kinds["cvc"] == ("cc-csc", True) and kinds["otp"] == ("one-time-code", True)
    assert kinds["login"] == ("username", True) and kinds["user"] == ("username", True)
    assert "ada_l" not in str(reply)


def test_origin_must_be_a_web_origin(service: BridgeService) -> None:
    ext = paired(service)
    for bad in ("", "file:///etc/passwd", "chrome://settings", "javascript:alert(1)"):
        assert fill(ext, origin=bad)["kind"] == "bad_origin"


def test_revoked_pairing_is_refused(service: BridgeService) -> None:
    ext = paired(service, "old laptop")
    assert service.state.revoke_pairing("old laptop") == 1
    assert ext.request({"type": "ping"})["kind"] == "unpaired"
    assert ext.hello()["paired"] is False


def test_audit_log_has_kinds_sites_and_times_never_values(service: BridgeService, settings) -> None:
    ext = paired(service)
    service.state.permit(SITE)
    service.state.confirm(SITE, ext.public)
    assert fill(ext)["status"] == "fill"
    events = service.state.audit_log()
    fills = [e for e in events if e["action"] == "fill"]
    assert fills and fills[0]["site"] == SITE and fills[0]["at"] > 0
    assert fills[0]["kinds"] == ["email", "family-name", "given-name"]
    service.state.close()
    raw = b"".join(p.read_bytes() for p in Path(settings.bridge_dir).glob("bridge.db*"))
    assert b"ada@example.org" not in raw and b"Lovelace" not in raw


def test_frames_reject_oversized_replies() -> None:
    from app.bridge.framing import FrameError, encode_frame

    with pytest.raises(FrameError):
        encode_frame({"x": "a" * (1024 * 1024)})


def test_host_key_is_owner_only_and_stable(settings) -> None:
    a = HostKey.load_or_create(settings.bridge_dir)
    b = HostKey.load_or_create(settings.bridge_dir)
    assert a.public == b.public
    assert (settings.bridge_dir / "host.key").stat().st_mode & 0o077 == 0


def test_drafts_need_a_permitted_and_confirmed_site(service: BridgeService) -> None:
    ext = paired(service)
    ask = {"type": "draft", "origin": SITE, "ref": "about", "question": "Tell us about yourself"}
    assert ext.request(ask)["kind"] == "not_permitted"
    service.state.permit(SITE)
    assert ext.request(ask)["kind"] == "not_confirmed"


def test_pending_pairings_are_capped(service: BridgeService) -> None:
    from app.bridge.state import MAX_PENDING

    exts = [FakeExtension(service.handle) for _ in range(MAX_PENDING + 5)]
    for e in exts[:MAX_PENDING]:
        e.hello()
    late = [service.handle({"action": "hello", "client_key": e.public}) for e in exts[MAX_PENDING:]]
    codes = {p.code for p in service.state.pending()}
    # a full list refuses newcomers rather than dropping the oldest (the real request)
    assert len(codes) == MAX_PENDING and exts[0].code in codes
    assert {r["kind"] for r in late} == {"pairing_full"}
