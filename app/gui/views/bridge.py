"""Bridge: install the browser host, approve and revoke pairings, site permissions, the fill
audit log.

Bridge state is a small SQLite file shared with the native hosts; each job opens it, reads or
changes one thing and closes it, on a worker thread.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui import bridge_api
from app.gui.services import Services
from app.gui.views.base import Page
from app.gui.widgets import Notice
from app.gui.workers import JobContext


def _tree(headers: list[str], name: str) -> QTreeWidget:
    t = QTreeWidget()
    t.setHeaderLabels(headers)
    t.setRootIsDecorated(False)
    t.setAccessibleName(name)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.header().setStretchLastSection(True)
    return t


def _home_relative(path: str) -> str:
    from pathlib import Path

    home = str(Path.home())
    return "~" + path[len(home) :] if home != "/" and path.startswith(home + "/") else path


def _when(ts: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(ts))) if ts else "never"


class BridgePage(Page):
    title = "Bridge"
    refresh_on_show = True  # browser hosts write the audit log and pairing requests
    subtitle = (
        "Lets your browser fill forms from your profile. A browser must be paired and a site "
        "permitted; the first fill on each site asks you to confirm (in a memex window while "
        "this app runs). "
        "Values are never logged."
    )

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(services, parent)
        self.feature = services.bridge_feature()
        self.notice = Notice(self.feature.reason)
        self.notice.setVisible(not self.feature.available)
        self.layout_.addWidget(self.notice)
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Bridge sections")
        self.layout_.addWidget(self.tabs, 1)
        if not self.feature.available:
            self.tabs.hide()
            self.layout_.addStretch(1)
            return

        # browsers and pairing ------------------------------------------------------
        tab = QWidget()
        lay = QVBoxLayout(tab)
        self.browsers = _tree(["Browser", "Host", "Manifest"], "Browsers")
        self.browsers.setMaximumHeight(120)
        lay.addWidget(
            QLabel("<b>1. Install the browser host</b> so the memex extension can reach this app.")
        )
        lay.addWidget(self.browsers)
        row = QHBoxLayout()
        self.install_btn = QPushButton("Install for selected browser")
        self.install_btn.setAccessibleName("Install the browser host for the selected browser")
        self.install_btn.clicked.connect(self.install)
        row.addStretch(1)
        row.addWidget(self.install_btn)
        lay.addLayout(row)
        lay.addWidget(
            QLabel(
                "<b>2. Pair the browser</b>: approve the code the extension shows, and give it a "
                "name."
            )
        )
        self.pairings = _tree(["Name", "Code", "Status", "Last used"], "Paired browsers")
        lay.addWidget(self.pairings, 1)
        row = QHBoxLayout()
        self.pair_hint = QLabel("")
        self.pair_hint.setObjectName("muted")
        self.approve_btn = QPushButton("Approve…")
        self.approve_btn.setAccessibleName("Approve pairing request")
        self.unpair_btn = QPushButton("Revoke pairing")
        self.approve_btn.clicked.connect(self.approve)
        self.unpair_btn.clicked.connect(self.unpair)
        row.addWidget(self.pair_hint, 1)
        row.addWidget(self.approve_btn)
        row.addWidget(self.unpair_btn)
        lay.addLayout(row)
        self.tabs.addTab(tab, "Browsers and pairing")

        # sites ----------------------------------------------------------------------
        tab = QWidget()
        lay = QVBoxLayout(tab)
        about = QLabel(
            "Only these sites may ask for your profile values. “Always allowed in” lists the "
            "browsers that fill there without asking again; revoke the site to be asked again."
        )
        about.setWordWrap(True)
        lay.addWidget(about)
        self.sites = _tree(["Site", "Always allowed in"], "Permitted sites")
        lay.addWidget(self.sites, 1)
        row = QHBoxLayout()
        self.site_edit = QLineEdit()
        self.site_edit.setPlaceholderText("https://shop.example")
        self.site_edit.setAccessibleName("Site to permit")
        self.permit_btn = QPushButton("Permit")
        self.revoke_btn = QPushButton("Revoke selected")
        self.permit_btn.setAccessibleName("Permit site")
        self.revoke_btn.setAccessibleName("Revoke selected site")
        self.permit_btn.clicked.connect(self.permit)
        self.site_edit.returnPressed.connect(self.permit)
        self.revoke_btn.clicked.connect(self.revoke_site)
        row.addWidget(self.site_edit, 1)
        row.addWidget(self.permit_btn)
        row.addWidget(self.revoke_btn)
        lay.addLayout(row)
        self.tabs.addTab(tab, "Site permissions")
        self.sites.itemSelectionChanged.connect(self._selection)
        self.pairings.itemSelectionChanged.connect(self._selection)

        # audit --------------------------------------------------------------------------
        tab = QWidget()
        lay = QVBoxLayout(tab)
        lay.addWidget(QLabel("What was filled where and when: field kinds only, never values."))
        self.audit = _tree(
            ["When", "Action", "Site", "Browser", "Fields", "Outcome"], "Fill audit log"
        )
        lay.addWidget(self.audit, 1)
        self.tabs.addTab(tab, "Audit log")
        self._selection()

    def _selection(self) -> None:
        sel = self._selected_pairing()
        self.approve_btn.setEnabled(sel is not None and sel[0] == "pending")
        self.unpair_btn.setEnabled(sel is not None and sel[0] == "paired")
        self.revoke_btn.setEnabled(
            self.sites.currentItem() is not None and bool(self.sites.selectedItems())
        )

    # -- loading ----------------------------------------------------------------------
    def refresh(self) -> None:
        if not self.feature.available:
            return
        settings = self.services.settings
        bridge_api.use_vault(self.services.runtime.vault)  # the key the unlock screen gave us
        self.services.jobs.start(
            lambda ctx: bridge_api.snapshot(settings),
            name="bridge",
            on_done=self._show,
            on_error=self.show_error,
        )

    def _show(self, snap: dict[str, Any]) -> None:
        self.browsers.clear()
        for name, entry in snap["browsers"].items():
            status = (
                "installed"
                if entry.get("current")
                else (
                    "installed for another data folder"
                    if entry.get("installed")
                    else "not installed"
                )
            )
            item = QTreeWidgetItem(
                [name.capitalize(), status, _home_relative(entry.get("manifest", ""))]
            )
            item.setData(0, Qt.ItemDataRole.UserRole, name)
            self.browsers.addTopLevelItem(item)
        first = self.browsers.topLevelItem(0)
        if first is not None:
            self.browsers.setCurrentItem(first)
        self.pairings.clear()
        for p in snap["pending"]:
            item = QTreeWidgetItem(
                [p["label"] or "(new browser)", p["code"], "waiting for approval", ""]
            )
            item.setData(0, Qt.ItemDataRole.UserRole, ("pending", p["code"]))
            self.pairings.addTopLevelItem(item)
        for p in snap["pairings"]:
            item = QTreeWidgetItem([p["name"], p["code"], "paired", _when(p.get("last_used_at"))])
            item.setData(0, Qt.ItemDataRole.UserRole, ("paired", p["name"]))
            self.pairings.addTopLevelItem(item)
        self.pair_hint.setText(
            "No browser has asked to pair yet: open the memex extension in your browser."
            if not snap["pending"] and not snap["pairings"]
            else ""
        )
        self.sites.clear()
        always = snap.get("always", {})
        for s in snap["sites"]:
            self.sites.addTopLevelItem(
                QTreeWidgetItem([s, ", ".join(always.get(s, [])) or "asks on first fill"])
            )
        self.audit.clear()
        for a in snap["audit"]:
            self.audit.addTopLevelItem(
                QTreeWidgetItem(
                    [
                        _when(a["at"]),
                        str(a["action"]),
                        str(a.get("site") or ""),
                        str(a.get("pairing") or ""),
                        ", ".join(a.get("kinds") or []),
                        str(a.get("outcome") or ""),
                    ]
                )
            )
        if not snap["audit"]:
            self.audit.addTopLevelItem(QTreeWidgetItem(["", "Nothing filled yet."]))
        self._selection()

    # -- actions ----------------------------------------------------------------------
    def _run(self, fn: Any, name: str) -> None:
        settings = self.services.settings

        def work(ctx: JobContext) -> Any:
            return fn(settings)

        self.services.jobs.start(
            work, name=name, on_done=lambda _r: self.refresh(), on_error=self.show_error
        )

    def install(self) -> None:
        item = self.browsers.currentItem()
        if item is not None:
            browser = item.data(0, Qt.ItemDataRole.UserRole)
            self._run(lambda s: bridge_api.install(s, browser), "bridge-install")

    def _selected_pairing(self) -> tuple[str, str] | None:
        items = self.pairings.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole) if items else None

    def approve(self) -> None:
        sel = self._selected_pairing()
        if not sel or sel[0] != "pending":
            self.banner.show_message("Select a browser that is waiting for approval first.")
            return
        name, ok = QInputDialog.getText(
            self,
            "Approve pairing",
            f"Check that the browser shows the code {sel[1]}, then name it:",
            text="My browser",
        )
        if ok and name.strip():
            self._run(lambda s: bridge_api.approve(s, sel[1], name.strip()), "bridge-approve")

    def unpair(self) -> None:
        sel = self._selected_pairing()
        if sel:
            self._run(lambda s: bridge_api.revoke_pairing(s, sel[1]), "bridge-unpair")

    def permit(self) -> None:
        site = self.site_edit.text().strip()
        if site:
            self.site_edit.clear()
            self._run(lambda s: bridge_api.permit(s, site), "bridge-permit")

    def revoke_site(self) -> None:
        item = self.sites.currentItem()
        if item is not None:
            site = item.text(0)
            self._run(lambda s: bridge_api.revoke_site(s, site), "bridge-revoke")
