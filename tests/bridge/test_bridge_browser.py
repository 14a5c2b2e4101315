"""End to end in a real browser: Debian's Chromium (headless, via Playwright), the real
extension, the real native host registered in the profile's NativeMessagingHosts folder, a form
on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bridge.bridge_browser import CHROMIUM, PROFILE, browser_session

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"
    ),
]
pytest.importorskip("playwright")


def test_fill_after_click_leaves_secrets_hidden_and_foreign_frames_empty(
    tmp_path: Path, home
) -> None:
    from app.bridge.state import BridgeState
    from app.settings import load_settings

    with browser_session(tmp_path) as s:
        s.wait_state("idle")
        before = s.values()
        assert not any(before.values())  # nothing is filled without a gesture
        s.click_memex()
        assert s.wait_state("confirm", "error") == "confirm"  # first fill on this site asks first
        assert not any(s.values().values())
        s.page.keyboard.press("Enter")  # the focused "Fill" button in memex's closed shadow root
        assert s.wait_state("filled", "error") == "filled"
        v = s.values()
        assert (v["given"], v["family"], v["email"], v["phone"], v["city"]) == (
            PROFILE["given-name"],
            PROFILE["family-name"],
            PROFILE["email"],
            PROFILE["tel"],
            PROFILE["address-level2"],
        )
        assert v["pw"] == "" and v["token"] == "" and v["hp"] == "" and v["about"] == ""
        assert s.frame_values() == {"femail": "", "fname": ""}
        # the page cannot look into memex's UI
        assert s.page.evaluate("() => document.querySelector('memex-autofill').shadowRoot") is None
        # the second fill on the site needs only the click
        s.page.reload()
        s.wait_state("idle")
        s.click_memex()
        assert s.wait_state("filled", "error") == "filled"
        assert s.values()["email"] == PROFILE["email"]
        origin = s.origin
    state = BridgeState(load_settings(home=tmp_path / "home").bridge_dir)
    fills = [e for e in state.audit_log() if e["action"] == "fill"]
    state.close()
    assert fills and all(e["site"] == origin for e in fills)
    assert set(fills[0]["kinds"]) == {"given-name", "family-name", "email", "tel", "address-level2"}


def test_page_scripts_cannot_trigger_a_fill(tmp_path: Path, home) -> None:
    with browser_session(tmp_path) as s:
        s.wait_state("idle")
        # an untrusted click from the page (not a user gesture) does nothing
        s.page.evaluate("() => document.querySelector('memex-autofill').click()")
        s.page.evaluate("""() => document.querySelector('memex-autofill')
                            .dispatchEvent(
                                new MouseEvent('click', {bubbles: true, composed: true}))""")
        s.page.wait_for_timeout(500)
        assert s.wait_state("idle") == "idle"
        assert not any(s.values().values())


def test_site_not_permitted_shows_the_command_and_fills_nothing(tmp_path: Path, home) -> None:
    with browser_session(tmp_path, permit=False) as s:
        s.wait_state("idle")
        s.click_memex()
        assert s.wait_state("not_permitted", "error", "confirm") == "not_permitted"
        assert not any(s.values().values())


def test_service_worker_sends_the_browser_sender_origin_not_the_claimed_one(
    tmp_path: Path, home
) -> None:
    with browser_session(tmp_path) as s:
        s.wait_state("idle")
        worker = next(
            w for w in s.context.service_workers if w.url.startswith("chrome-extension://")
        )
        call = """async ([claimed, sender]) => {
            sender.id = chrome.runtime.id;
            const msg = {type: 'fill', origin: claimed, top_origin: claimed,
                         fields: [{ref: 'email', label: 'Email', type: 'email'}]};
            try { return await handle(msg, sender); }
            catch (e) { return {status: 'error', kind: e.kind}; }
        }"""
        # a page on an unpermitted site claims to be the permitted one: refused
        evil = {
            "tab": {"id": 1},
            "frameId": 0,
            "origin": "https://evil.example",
            "url": "https://evil.example/",
        }
        assert worker.evaluate(call, [s.origin, evil]) == {
            "status": "error",
            "kind": "not_permitted",
        }
        # a frame of the permitted origin inside someone else's page: refused as cross-origin
        framed = {
            "tab": {"id": 1, "url": "https://evil.example/"},
            "frameId": 7,
            "origin": s.origin,
            "url": s.url,
        }
        assert worker.evaluate(call, [s.origin, framed]) == {
            "status": "error",
            "kind": "cross_origin",
        }


def test_first_fill_is_confirmed_in_the_running_app(tmp_path: Path, home) -> None:
    """With the desktop app up, the first fill asks there (not in the page) and fills once
    allowed."""
    from app.bridge.access import RuntimeAccess
    from app.bridge.agent import AgentServer
    from app.bridge.confirm import ConfirmAnswer, ConfirmRequest
    from app.bridge.state import BridgeState
    from app.runtime import Runtime
    from app.settings import load_settings

    asked: list[ConfirmRequest] = []

    def confirm(
        request: ConfirmRequest,
    ) -> ConfirmAnswer:  # the user clicks "Always allow this site"
        asked.append(request)
        return ConfirmAnswer(request.token, "always")

    with browser_session(tmp_path) as s:
        settings = load_settings(home=tmp_path / "home")
        app_runtime = Runtime(settings)
        try:
            with AgentServer(settings, RuntimeAccess(app_runtime), confirmer=confirm):
                s.wait_state("idle")
                s.click_memex()
                assert (
                    s.wait_state("filled", "confirm", "error") == "filled"
                )  # no confirm step in the page
                v = s.values()
                assert (v["given"], v["email"], v["pw"]) == (
                    PROFILE["given-name"],
                    PROFILE["email"],
                    "",
                )
                assert (
                    len(asked) == 1
                    and asked[0].site == s.origin
                    and asked[0].browser == "test chromium"
                )
                shown = {f.ref: f for f in asked[0].fields}
                assert shown["pw"].sensitive and shown["phone"].preview != PROFILE["tel"]  # masked
        finally:
            app_runtime.close()
    state = BridgeState(load_settings(home=tmp_path / "home").bridge_dir)
    try:
        assert [e["outcome"] for e in state.audit_log() if e["action"] == "confirm"] == ["always"]
    finally:
        state.close()
