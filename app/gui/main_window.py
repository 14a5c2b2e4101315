"""The main window: a sidebar of screens, menus with shortcuts, remembered geometry."""

from __future__ import annotations

import importlib

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QStackedWidget,
    QWidget,
)

from app.gui.services import Services
from app.gui.theme import app_icon
from app.gui.views import PAGES, SECTIONS
from app.gui.views.base import Page

DEFAULT_SIZE = (1180, 760)


def gui_settings(services: Services) -> QSettings:
    """Window state lives under MEMEX_HOME, never in the user's global Qt config."""
    path = services.settings.ensure_home() / "gui.ini"
    return QSettings(str(path), QSettings.Format.IniFormat)


class MainWindow(QMainWindow):
    def __init__(self, services: Services, *, remember_geometry: bool = True) -> None:
        super().__init__()
        self.services = services
        self.remember_geometry = remember_geometry
        self.setWindowTitle("memex")
        self.setWindowIcon(app_icon())
        self.setAccessibleName("memex main window")
        self.resize(*DEFAULT_SIZE)
        self.setMinimumSize(760, 520)

        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setAccessibleName("Screens")
        self.sidebar.setFixedWidth(170)
        self.stack = QStackedWidget()
        row.addWidget(self.sidebar)
        row.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.pages: dict[str, Page] = {}
        for name, (label, target) in PAGES.items():
            module_name, cls_name = target.split(":")
            cls = getattr(importlib.import_module(module_name), cls_name)
            page: Page = cls(services)
            self.pages[name] = page
            self.stack.addWidget(page)
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setToolTip(f"{label} (Ctrl+{len(self.pages)})")
            self.sidebar.addItem(item)
        self.sidebar.currentRowChanged.connect(self._on_row)

        self.status = QLabel("Opening your memory…")
        self.status.setAccessibleName("Status")
        self.statusBar().addWidget(self.status, 1)
        services.warmed.connect(self._on_warmed)
        self.confirm_dialogs: list[QWidget] = []
        services.confirms.requested.connect(self.show_confirm)
        self._build_menus()
        self._restore()

    # -- navigation -------------------------------------------------------------------
    def select(self, name: str) -> Page:
        names = list(self.pages)
        section = SECTIONS.get(name)
        if section is not None:
            name = section[0]
        if name not in self.pages:
            raise KeyError(name)
        self.sidebar.setCurrentRow(names.index(name))
        page = self.pages[name]
        if section is not None:
            page.show_section(section[1])
        return page

    @property
    def current_name(self) -> str:
        return list(self.pages)[max(0, self.sidebar.currentRow())]

    def _on_row(self, row: int) -> None:
        if row < 0:
            return
        self.stack.setCurrentIndex(row)
        page = self.stack.widget(row)
        if isinstance(page, Page):
            page.activate()

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        mem = self.pages.get("memories")
        if mem is not None:
            for text, key, slot in (
                ("&New memory…", "Ctrl+N", "add_memory"),
                ("&Import files…", "Ctrl+I", "import_files"),
                ("Import &folder…", "Ctrl+Shift+I", "import_folder"),
            ):
                act = QAction(text, self)
                act.setShortcut(QKeySequence(key))
                act.triggered.connect(lambda _=False, s=slot: self._memories_action(s))
                file_menu.addAction(act)
            file_menu.addSeparator()
        quit_act = QAction("&Quit", self)
        quit_act.setShortcut(QKeySequence(QKeySequence.StandardKey.Quit))
        quit_act.triggered.connect(self.close)
        file_menu.addAction(quit_act)

        go_menu = self.menuBar().addMenu("&Go")
        for i, (name, (label, _)) in enumerate(PAGES.items(), start=1):
            act = QAction(label, self)
            act.setShortcut(QKeySequence(f"Ctrl+{i}"))
            act.triggered.connect(lambda _=False, n=name: self.select(n))
            go_menu.addAction(act)
        find = QAction("&Search memories", self)
        find.setShortcut(QKeySequence(QKeySequence.StandardKey.Find))
        find.triggered.connect(lambda: self._memories_action("focus_search"))
        go_menu.addAction(find)

    def _memories_action(self, slot: str) -> None:
        page = self.select("memories")
        getattr(page, slot)()

    # -- status -----------------------------------------------------------------------
    def _on_warmed(self, info: object) -> None:
        from app.gui import gcguard

        gcguard.settle()  # the heavy libraries are loaded: keep them out of later collections
        if isinstance(info, dict) and info.get("error"):
            self.status.setText(f"Memory could not be opened: {info['error']}")
        elif isinstance(info, dict):
            n = info.get("memories", 0)
            self.status.setText(
                f"{n} memor{'y' if n == 1 else 'ies'} · everything stays on this computer"
            )

    # -- first-fill confirmations from browser hosts ----------------------------------------
    def show_confirm(self, pending: object) -> QWidget:
        from app.gui.confirm import ConfirmDialog

        # its own top-level window, not a child: it must show even while this one is minimized
        dialog = ConfirmDialog(pending, None)  # type: ignore[arg-type]
        dialog.setWindowIcon(app_icon())
        site = dialog.pending.request.site
        self.confirm_dialogs.append(dialog)
        dialog.decided.connect(lambda d, s=site: self._confirm_decided(s, d))
        dialog.destroyed.connect(lambda *_a, d=dialog: self._forget_dialog(d))
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        self.set_status(f"Your browser asks to fill a form on {site}: answer in the memex dialog.")
        return dialog

    def _forget_dialog(self, dialog: QWidget) -> None:
        if dialog in self.confirm_dialogs:
            self.confirm_dialogs.remove(dialog)

    def _confirm_decided(self, site: str, decision: str) -> None:
        said = {
            "once": "allowed once",
            "always": "always allowed",
            "deny": "denied",
            "timeout": "not answered in time (refused)",
        }.get(decision, decision)
        self.set_status(f"Form fill on {site}: {said}.")
        bridge = self.pages.get("bridge")
        if bridge is not None and self.current_name == "bridge":
            # the host writes the audit entry once the answer reaches it, a moment later
            QTimer.singleShot(500, bridge.refresh)

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    # -- geometry ---------------------------------------------------------------------
    def _restore(self) -> None:
        start = "chat"
        if self.remember_geometry:
            qs = gui_settings(self.services)
            geo = qs.value("geometry")
            if geo is not None:
                self.restoreGeometry(geo)
            saved = qs.value("tab")
            if isinstance(saved, str) and saved in self.pages:
                start = saved
        self.sidebar.setCurrentRow(list(self.pages).index(start))

    def save_state(self) -> None:
        if not self.remember_geometry:
            return
        qs = gui_settings(self.services)
        qs.setValue("geometry", self.saveGeometry())
        qs.setValue("tab", self.current_name)
        qs.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_state()
        for dialog in list(self.confirm_dialogs):  # quitting answers open questions with Deny
            dialog.close()
        for page in self.pages.values():
            closer = getattr(page, "shutdown", None)
            if callable(closer):
                closer()
        self.services.jobs.cancel_all()
        super().closeEvent(event)
