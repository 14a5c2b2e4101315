"""The first-fill dialog, end to end: a host asks the running app over its real socket, qtbot
answers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

pytest.importorskip("nacl")

SITE = "https://shop.example"


@pytest.fixture(autouse=True)
def private_runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))  # this test's app socket, seen by nobody else


class Browser:
    """A paired browser's host (the real BridgeService, as `memex bridge host` builds it) in a
    thread."""

    def __init__(self, window: Any, runtime: Any) -> None:
        from app.bridge.host import build_service
        from tests.bridge.bridge_client import FakeExtension

        self.service = build_service(runtime.settings)
        self.ext = FakeExtension(self.service.handle)
        self.ext.hello()
        self.service.state.approve(self.ext.code, "Work laptop")
        self.service.state.permit(SITE)
        self.reply: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None

    def fill(self) -> None:
        from tests.bridge.bridge_client import SIGNUP_FIELDS, field

        fields = [*SIGNUP_FIELDS, field("phone", "Phone", type="tel")]

        def run() -> None:
            self.reply = self.ext.request(
                {"type": "fill", "origin": SITE, "top_origin": SITE, "fields": fields}
            )

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(30)
        self.service.memory.close()  # type: ignore[attr-defined]
        self.service.state.close()


@pytest.fixture
def browser(window, runtime) -> Iterator[Browser]:
    runtime.memory.profile_set("given-name", "Ada")
    runtime.memory.profile_set("email", "ada@example.org")
    runtime.memory.profile_set("tel", "+44 20 7946 0000")
    assert window.services.start_bridge_agent()
    b = Browser(window, runtime)
    yield b
    b.close()
    window.services.stop_bridge_agent()


def _dialog(qtbot, window):
    qtbot.waitUntil(lambda: bool(window.confirm_dialogs), timeout=30000)
    dialog = window.confirm_dialogs[-1]
    qtbot.waitUntil(dialog.isVisible, timeout=10000)
    return dialog


def _rows(dialog) -> dict[str, list[str]]:
    t = dialog.table
    return {
        t.topLevelItem(i).text(0): [t.topLevelItem(i).text(c) for c in (1, 2)]
        for i in range(t.topLevelItemCount())
    }


def test_allow_once_fills_and_shows_masked_values(qtbot, window, browser) -> None:
    browser.fill()
    dialog = _dialog(qtbot, window)
    assert not dialog.isModal() and dialog.windowModality() == Qt.WindowModality.NonModal
    assert SITE in dialog.windowTitle()
    rows = _rows(dialog)
    assert rows["Email"] == ["email", "ada@example.org"]
    assert rows["Phone"][1] == "+44••••••••••000"  # masked on screen
    assert (
        rows["Password"] == ["secret", "never filled"] and rows["Card number"][1] == "never filled"
    )
    assert rows["Last name"][1].startswith("(not in your profile")
    # non-modal: the rest of the app keeps working while the question is open
    assert window.select("memories") is window.pages["memories"]
    qtbot.mouseClick(dialog.once_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: browser.reply is not None, timeout=30000)
    assert browser.reply["status"] == "fill"
    assert browser.reply["values"] == {
        "given": "Ada",
        "email": "ada@example.org",
        "phone": "+44 20 7946 0000",
    }
    assert not browser.service.state.confirmed(SITE, browser.ext.public)
    assert browser.service.state.audit_log(2)[1]["outcome"] == "once"
    qtbot.waitUntil(lambda: not window.confirm_dialogs, timeout=10000)
    assert "allowed once" in window.status.text()


def test_always_allow_records_the_site(qtbot, window, browser) -> None:
    browser.fill()
    qtbot.mouseClick(_dialog(qtbot, window).always_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: browser.reply is not None, timeout=30000)
    assert browser.reply["values"]["given"] == "Ada"
    assert browser.service.state.confirmed(SITE, browser.ext.public)
    page = window.select("bridge")  # the Sites tab says which browser no longer asks there
    qtbot.waitUntil(
        lambda: (
            page.sites.topLevelItemCount() == 1
            and page.sites.topLevelItem(0).text(1) == "Work laptop"
        ),
        timeout=30000,
    )


@pytest.mark.parametrize("how", ["deny button", "escape", "close window", "quit the app"])
def test_deny_refuses_and_sends_nothing(qtbot, window, browser, how: str) -> None:
    browser.fill()
    dialog = _dialog(qtbot, window)
    if how == "deny button":
        qtbot.mouseClick(dialog.deny_btn, Qt.MouseButton.LeftButton)
    elif how == "escape":
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    elif how == "close window":
        dialog.close()
    else:
        assert dialog.parent() is None  # its own window: shows even with the main window minimized
        window.close()
    qtbot.waitUntil(lambda: browser.reply is not None, timeout=30000)
    assert browser.reply["kind"] == "denied" and "values" not in browser.reply
    assert not browser.service.state.confirmed(SITE, browser.ext.public)
    assert browser.service.state.audit_log(1)[0]["outcome"] == "denied"


def test_enter_denies_by_default(qtbot, window, browser) -> None:
    browser.fill()
    dialog = _dialog(qtbot, window)
    assert dialog.deny_btn.isDefault() and not dialog.always_btn.isDefault()
    qtbot.keyClick(dialog, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: browser.reply is not None, timeout=30000)
    assert browser.reply["kind"] == "denied"


def test_no_answer_within_the_ttl_refuses_and_closes_the_dialog(qtbot, window, browser) -> None:
    browser.service.desktop_ttl_s = 1.5
    browser.fill()
    dialog = _dialog(qtbot, window)
    assert "refuses the fill" in dialog.countdown.text()
    qtbot.waitUntil(lambda: browser.reply is not None, timeout=30000)
    assert browser.reply["kind"] == "confirm_timeout"
    qtbot.waitUntil(lambda: not window.confirm_dialogs, timeout=10000)
    assert browser.service.state.audit_log(1)[0]["outcome"] == "confirm-timeout"
