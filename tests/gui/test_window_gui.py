"""Main window: remembered geometry under MEMEX_HOME, shortcuts, accessible names, never a dead
screen."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QAbstractButton, QWidget

from app.gui.views import PAGES
from tests.gui.conftest import wait_idle


def test_geometry_and_tab_are_remembered_under_memex_home(qtbot, runtime, home) -> None:
    from app.gui.app import build_window, ensure_app

    ensure_app()
    win = build_window(runtime)
    qtbot.addWidget(win)
    win.show()
    win.resize(780, 610)  # inside the 800x800 offscreen screen
    size = (win.width(), win.height())
    assert size != (1180, 760)  # not the default size
    win.select("profile")
    wait_idle(qtbot, win)
    win.close()
    ini = home / "gui.ini"
    assert ini.exists()
    assert QSettings(str(ini), QSettings.Format.IniFormat).value("tab") == "profile"

    again = build_window(runtime)
    qtbot.addWidget(again)
    again.show()
    assert again.current_name == "profile"
    assert (again.width(), again.height()) == size
    wait_idle(qtbot, again)
    again.close()


def test_every_screen_has_a_title_and_named_controls(qtbot, window) -> None:
    assert [window.sidebar.item(i).text() for i in range(window.sidebar.count())] == [
        v[0] for v in PAGES.values()
    ]
    for name in PAGES:
        page = window.select(name)
        wait_idle(qtbot, window)
        assert window.stack.currentWidget() is page
        for button in page.findChildren(QAbstractButton):
            if button.isVisibleTo(page) and button.text():
                assert button.accessibleName() or button.text(), f"{name}: unnamed button"
        assert page.accessibleName().endswith("screen")


def test_shortcuts_switch_screens(qtbot, window) -> None:
    shortcuts = {
        a.shortcut().toString(): a
        for m in window.menuBar().findChildren(QWidget)
        for a in m.actions()
    }
    assert {"Ctrl+1", "Ctrl+2", "Ctrl+6", "Ctrl+N", "Ctrl+I", "Ctrl+F"} <= set(shortcuts)
    shortcuts["Ctrl+3"].trigger()
    assert window.current_name == "profile"
    shortcuts["Ctrl+F"].trigger()
    assert window.current_name == "memories"
    wait_idle(qtbot, window)
