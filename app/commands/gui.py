"""`memex gui`: open the desktop app, or render one screen offscreen to a PNG and exit."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import click

from app.commands._common import AppContext, memex_command
from app.errors import MemexError, NotInstalledError

TABS = ("chat", "memories", "profile", "training", "models", "bridge", "timeline", "inbox")
SCREENSHOT_TABS = ("bridge-confirm",)  # the first-fill dialog over the Bridge screen


def _require_qt() -> None:
    if importlib.util.find_spec("PySide6") is None:
        raise NotInstalledError(
            "The desktop app needs PySide6, which is not installed: install the gui extra "
            "with `pip install 'memex[gui]'`."
        )


def _human(p: dict[str, Any]) -> str:
    return f"Wrote {p['screenshot']} ({p['width']}x{p['height']})" if "screenshot" in p else ""


@memex_command("gui", human=_human)
@click.option(
    "--screenshot",
    "screenshot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Render the window offscreen to this PNG and exit.",
)
@click.option(
    "--tab",
    type=click.Choice(TABS + SCREENSHOT_TABS),
    default=None,
    help="Screen to show (bridge-confirm: with --screenshot only).",
)
@click.option(
    "--size", default="1180x760", show_default=True, help="Window size for --screenshot, WxH."
)
@click.option("--ask", "question", default=None, help="With --screenshot: ask this in Chat first.")
def gui(
    obj: AppContext, screenshot: Path | None, tab: str | None, size: str, question: str | None
) -> dict[str, Any] | None:
    """Open the desktop app (or render it to a PNG with --screenshot)."""
    _require_qt()
    if screenshot is not None:
        try:
            w, h = (int(v) for v in size.lower().split("x"))
        except ValueError as exc:
            raise MemexError(
                f"--size must look like 1180x760, not {size!r}.", kind="usage"
            ) from exc
        if not (400 <= w <= 4000 and 300 <= h <= 4000):
            raise MemexError("--size must be between 400x300 and 4000x4000.", kind="usage")
        if screenshot.suffix.lower() != ".png":
            raise MemexError(
                f"The screenshot file must end in .png, not {screenshot.name!r}.", kind="usage"
            )
        if not screenshot.parent.exists():
            raise MemexError(f"The folder {screenshot.parent} does not exist.", kind="usage")
        from app.gui.app import ask_first, render_screenshot

        if question is not None and not question.strip():
            raise MemexError("--ask needs a question.", kind="usage")
        setup = ask_first(question) if question else None
        return render_screenshot(obj.runtime, screenshot, tab or "chat", size=(w, h), setup=setup)
    if question:
        raise MemexError("--ask only works together with --screenshot.", kind="usage")
    if tab in SCREENSHOT_TABS:
        raise MemexError(f"--tab {tab} only works together with --screenshot.", kind="usage")
    from app.gui.app import run_app  # PySide6: loaded only when the app opens
    from app.service.host import host_service

    code = run_app(obj.runtime, tab, host=host_service)
    if code:
        raise MemexError(f"The desktop app exited with status {code}.", kind="gui", exit_code=code)
    return None
