"""Start the desktop app, or render one screen offscreen to a PNG.

The window is shown before any heavy library loads: the memory store (chromadb, the
embedding model) warms up in a worker right after the first paint.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication

from app.gui import gcguard
from app.gui.main_window import MainWindow
from app.gui.services import ServiceHost, Services
from app.gui.theme import app_icon, apply_theme, follow_os_scheme

if TYPE_CHECKING:
    from app.gui.views.chat import ChatPage
    from app.runtime import Runtime


def ensure_app(argv: list[str] | None = None) -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    QCoreApplication.setOrganizationName("memex")
    QCoreApplication.setApplicationName("memex")
    app = QApplication(argv if argv is not None else [sys.argv[0]])
    app.setWindowIcon(app_icon())
    app.setDesktopFileName("memex")
    apply_theme(app)
    follow_os_scheme(app)
    return app


def build_window(
    runtime: Runtime, *, remember_geometry: bool = True, host: ServiceHost | None = None
) -> MainWindow:
    gcguard.install()  # cycles holding Qt objects are freed on this thread, never in a worker
    services = Services(runtime, host=host)
    return MainWindow(services, remember_geometry=remember_geometry)


def run_app(runtime: Runtime, tab: str | None = None, *, host: ServiceHost | None = None) -> int:
    """Open the main window and run the event loop until it closes; `host` (from `memex gui`)
    serves CLI commands from this app's Runtime meanwhile."""
    app = ensure_app()
    from app.gui.unlock import RelockWatch, ensure_unlocked

    if not ensure_unlocked(runtime):  # the vault is on and the user cancelled the unlock screen
        return 1
    win = build_window(runtime, host=host)
    RelockWatch(win, runtime)  # idle auto-lock brings the unlock screen back
    if tab:
        win.select(tab)
    win.show()
    # After the first paint: load chromadb + the embedding model in a worker.
    # Ctrl+C in the terminal closes the window cleanly; the timer lets Python see the signal.
    signal.signal(signal.SIGINT, lambda *_: win.close())
    pulse = QTimer(win)
    pulse.timeout.connect(lambda: None)
    pulse.start(250)
    QTimer.singleShot(50, win.services.warm_up)
    QTimer.singleShot(100, win.services.start_bridge_agent)
    QTimer.singleShot(150, win.services.start_service)
    try:
        code = app.exec()
    finally:
        win.services.stop_service()
        win.services.stop_bridge_agent()
        win.services.jobs.cancel_all()
        win.services.jobs.wait(60000)
    return int(code)


# Screenshot-only names -> the screen shown under them.
SCREENSHOT_ONLY = {"bridge-confirm": "bridge"}


def _with_confirm_dialog(win: MainWindow, runtime: Runtime) -> Any:
    """The Bridge screen with the first-fill dialog over it, as a user sees it (one picture)."""
    from PySide6.QtGui import QColor, QPainter, QPalette

    from app.gui.confirm import ConfirmDialog, PendingConfirm, preview_request

    request = preview_request(runtime)
    pending = PendingConfirm(request, time.monotonic() + request.ttl_s)
    dialog = ConfirmDialog(pending, win)
    dialog.show()
    dialog.adjustSize()
    dialog.resize(max(dialog.width(), 640), dialog.height())
    QApplication.processEvents()
    shot = dialog.grab()
    image = win.grab()
    painter = QPainter(image)
    painter.fillRect(image.rect(), QColor(0, 0, 0, 90))  # the window behind, dimmed
    title_h = 30
    x = (image.width() - shot.width()) // 2
    y = max(8, (image.height() - shot.height() - title_h) // 2)
    pal = dialog.palette()
    # offscreen windows have no frame: draw a title bar so it reads as its own window
    painter.fillRect(
        x - 1,
        y - 1,
        shot.width() + 2,
        shot.height() + title_h + 2,
        pal.color(QPalette.ColorRole.Mid),
    )
    painter.fillRect(x, y, shot.width(), title_h, pal.color(QPalette.ColorRole.Button))
    painter.setPen(pal.color(QPalette.ColorRole.ButtonText))
    painter.drawText(x + 12, y + 20, dialog.windowTitle())
    painter.drawPixmap(x, y + title_h, shot)
    painter.end()
    pending.decide("deny")  # a picture only: nothing was asked
    dialog.close()
    return image


def wait_until_idle(win: MainWindow, timeout_s: float = 60.0) -> bool:
    """Process events until no job is running (screenshot mode and tests)."""
    deadline = time.monotonic() + timeout_s
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        QApplication.processEvents()
        if win.services.jobs.busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.3:  # jobs that start more jobs get a moment
            return True
        time.sleep(0.01)
    return False


def ask_first(question: str) -> Any:
    """A screenshot setup step: ask `question` on the Chat screen, then go back to the tab."""

    def setup(win: MainWindow, tab: str) -> None:
        chat = cast("ChatPage", win.pages["chat"])
        chat.ask(question)
        wait_until_idle(win, timeout_s=300)
        win.select(tab)

    return setup


def render_screenshot(
    runtime: Runtime,
    png: Path,
    tab: str = "chat",
    size: tuple[int, int] = (1180, 760),
    setup: Any = None,
) -> dict[str, Any]:
    """Render the window offscreen with the current data, save a PNG, return what was written."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    ensure_app()
    win = build_window(runtime, remember_geometry=False)
    win.resize(*size)
    win.select(SCREENSHOT_ONLY.get(tab, tab))
    win.show()
    win.services.warm_up(heavy=False)
    wait_until_idle(win)
    if setup is not None:  # e.g. type a search, ask a question, before the picture
        setup(win, tab)
        wait_until_idle(win, timeout_s=300)
    QApplication.processEvents()
    png.parent.mkdir(parents=True, exist_ok=True)
    image = _with_confirm_dialog(win, runtime) if tab == "bridge-confirm" else win.grab()
    if not image.save(str(png), "PNG"):
        from app.errors import MemexError

        raise MemexError(f"Could not write the screenshot to {png}.", kind="io_error")
    win.close()
    return {"screenshot": str(png), "tab": tab, "width": image.width(), "height": image.height()}
