"""A real Chromium with the real extension and the real native host, for tests and the benchmark.

Chromium (Debian's /usr/bin/chromium) runs headless through Playwright with the unpacked
extension; the host is registered in `<user-data-dir>/NativeMessagingHosts/` by
`memex bridge install --user-data-dir`. Pages are served from 127.0.0.1; a second server on
another port provides a cross-origin iframe.
"""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
EXTENSION_DIR = Path(__file__).resolve().parents[2] / "assets" / "browser-extension"

FORM_PAGE = """<!doctype html><html><head><title>Sign up</title></head><body>
<form id="f">
  <label for="given">First name</label><input id="given" name="given">
  <label for="family">Last name</label><input id="family" name="family">
  <label for="email">Email</label><input id="email" name="email" type="email">
  <label for="phone">Phone</label><input id="phone" name="phone">
  <label for="city">City</label><input id="city" name="city">
  <label for="pw">Password</label><input id="pw" name="pw" type="password">
  <input type="hidden" id="token" name="token" value="">
  <div style="display:none"><label for="hp">Email</label><input id="hp" name="hp"></div>
  <label for="about">Tell us about yourself</label><textarea id="about" name="about"></textarea>
</form>
<iframe id="foreign" src="{frame_url}" width="400" height="120"></iframe>
</body></html>"""

FRAME_PAGE = """<!doctype html><html><body>
<label for="femail">Email</label><input id="femail" name="femail" type="email">
<label for="fname">Name</label><input id="fname" name="fname">
</body></html>"""

PROFILE = {
    "given-name": "Ada",
    "family-name": "Lovelace",
    "email": "ada@example.org",
    "tel": "+44 20 7946 0000",
    "address-level2": "London",
}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serve_dir(folder: Path) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(_Quiet, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Session:
    page: Any
    context: Any
    origin: str
    url: str
    home: Path

    def click_memex(self) -> None:
        box = self.page.locator("memex-autofill").bounding_box()
        assert box is not None
        self.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    def wait_state(self, *states: str, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.page.evaluate(
                "() => { const h = document.querySelector('memex-autofill'); return h && "
                "h.getAttribute('data-state'); }"
            )
            if state in states:
                return str(state)
            time.sleep(0.02)
        raise TimeoutError(f"memex UI never reached {states}; last state {state!r}")

    def values(self) -> dict[str, str]:
        return dict(
            self.page.evaluate(
                "() => Object.fromEntries(Array.from(document.querySelectorAll('input, textarea'))"
                ".map(e => [e.id, e.value]))"
            )
        )

    def frame_values(self) -> dict[str, str]:
        frame = self.page.frame_locator("#foreign")
        return {i: frame.locator(f"#{i}").input_value() for i in ("femail", "fname")}

    def fill_ms(self) -> float:
        return float(self.page.locator("memex-autofill").get_attribute("data-fill-ms") or "nan")


def set_profile(home: Path, profile: dict[str, str]) -> None:
    from app.runtime import Runtime
    from app.settings import load_settings

    rt = Runtime(load_settings(home=home))
    try:
        for key, value in profile.items():
            rt.memory.profile_set(key, value)
    finally:
        rt.close()


@contextmanager
def browser_session(
    tmp: Path,
    *,
    pair: bool = True,
    permit: bool = True,
    profile: dict[str, str] | None = None,
    page_html: str | None = None,
) -> Iterator[Session]:
    """Chromium + extension + host for a fresh MEMEX_HOME under tmp, on a served form page
    (FORM_PAGE, or `page_html`)."""
    from playwright.sync_api import sync_playwright

    from app.bridge.install import install
    from app.bridge.state import BridgeState
    from app.settings import load_settings

    home, user_data, site = tmp / "home", tmp / "chromium-profile", tmp / "site"
    for d in (home, user_data, site):
        d.mkdir(parents=True, exist_ok=True)
    settings = load_settings(home=home)
    set_profile(home, PROFILE if profile is None else profile)
    install(settings, ["chromium"], user_data_dir=user_data)
    (site / "frame.html").write_text(FRAME_PAGE, encoding="utf-8")
    with serve_dir(site) as base, serve_dir(site) as foreign_base:
        html = FORM_PAGE if page_html is None else page_html
        (site / "form.html").write_text(
            html.replace("{frame_url}", f"{foreign_base}/frame.html"), encoding="utf-8"
        )
        ext = str(EXTENSION_DIR)
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(user_data),
                executable_path=str(CHROMIUM),
                headless=True,
                env={**os.environ, "MEMEX_HOME": str(home), "HF_HUB_OFFLINE": "1"},
                args=[
                    f"--load-extension={ext}",
                    f"--disable-extensions-except={ext}",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            try:
                state = BridgeState(settings.bridge_dir)
                try:
                    if pair:
                        _approve_first_request(state)
                    if permit:
                        state.permit(base)
                finally:
                    state.close()
                page = context.new_page()
                page.goto(f"{base}/form.html")
                page.wait_for_selector("memex-autofill", state="attached", timeout=15000)
                yield Session(page, context, base, f"{base}/form.html", home)
            finally:
                context.close()


def _approve_first_request(state: Any, timeout_s: float = 30.0) -> None:
    """The service worker says hello at start-up; approve that request as the user would."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pending = state.pending()
        if pending:
            assert state.approve(pending[0].code, "test chromium") is not None
            return
        time.sleep(0.05)
    raise TimeoutError("the extension never asked to pair (is the host manifest installed?)")
