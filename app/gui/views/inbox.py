"""Review inbox: profile values memex found in new memories wait here for accept / edit / reject."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QPushButton,
    QStackedLayout,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui import inbox_api
from app.gui.dialogs import show_memory
from app.gui.services import Services
from app.gui.views.profile import FIELD_LABELS
from app.gui.widgets import EmptyState, Notice
from app.gui.workers import JobContext

EMPTY = (
    "<p>Nothing to review.</p><p>When you add or import memories, the facts memex finds in them "
    "(your e-mail, phone, address, employer…) wait here. Nothing enters your profile until you "
    "accept it.</p>"
)


class InboxPanel(QWidget):
    count_changed = Signal(int)

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.items: list[dict[str, Any]] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 8, 0, 0)
        self.feature = services.inbox_feature()
        self.notice = Notice(self.feature.reason)
        self.notice.setVisible(not self.feature.available)
        lay.addWidget(self.notice)
        holder = QWidget()
        self.stack = QStackedLayout(holder)
        self.empty = EmptyState(EMPTY)
        self.tree = QTreeWidget()
        self.tree.setAccessibleName("Suggestions to review")
        self.tree.setHeaderLabels(["Field", "Suggested value", "Confidence", "Found in"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        head = self.tree.header()
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        head.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.tree.setColumnWidth(1, 240)
        self.tree.itemDoubleClicked.connect(lambda *_: self.open_source())
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.tree)
        lay.addWidget(holder, 1)
        row = QHBoxLayout()
        self.hint = QLabel("Double-click a suggestion to read the memory it came from.")
        self.hint.setObjectName("muted")
        self.accept_btn = QPushButton("Accept")
        self.edit_btn = QPushButton("Edit and accept…")
        self.reject_btn = QPushButton("Reject")
        row.addWidget(self.hint, 1)
        for b, slot in (
            (self.accept_btn, self.accept),
            (self.edit_btn, self.edit),
            (self.reject_btn, self.reject),
        ):
            b.setAccessibleName(b.text().rstrip("…") + " suggestion")
            b.setEnabled(False)
            b.clicked.connect(slot)
            row.addWidget(b)
        lay.addLayout(row)
        if not self.feature.available:
            holder.hide()
            for w in (self.hint, self.accept_btn, self.edit_btn, self.reject_btn):
                w.hide()
        self.tree.itemSelectionChanged.connect(self._selection)
        services.inbox_changed.connect(self.activate_count)
        self._visible_once = False

    def activate(self) -> None:
        self._visible_once = True
        self.refresh()

    def activate_count(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        if not self.feature.available:
            return
        svc = self.services
        self.services.jobs.start(
            lambda ctx: inbox_api.pending(svc), name="inbox", on_done=self._show
        )

    def _show(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.tree.clear()
        for it in items:
            conf = it.get("confidence")
            row = QTreeWidgetItem(
                [
                    FIELD_LABELS.get(str(it.get("key", "")), str(it.get("key", ""))),
                    str(it.get("value", ""))
                    + (f"  (replaces {it['previous_value']})" if it.get("previous_value") else ""),
                    f"{float(conf):.0%}" if isinstance(conf, (int, float)) else "",
                    str(it.get("source_text") or it.get("source_memory") or ""),
                ]
            )
            row.setData(0, Qt.ItemDataRole.UserRole, it.get("id"))
            row.setToolTip(3, str(it.get("source_text") or ""))
            self.tree.addTopLevelItem(row)
        self.stack.setCurrentWidget(self.tree if items else self.empty)
        self.count_changed.emit(len(items))
        self._selection()

    def _selection(self) -> None:
        on = bool(self.tree.selectedItems())
        for b in (self.accept_btn, self.edit_btn, self.reject_btn):
            b.setEnabled(on)

    def _current(self) -> dict[str, Any] | None:
        sel = self.tree.selectedItems()
        if not sel:
            return None
        item_id = sel[0].data(0, Qt.ItemDataRole.UserRole)
        return next((i for i in self.items if i.get("id") == item_id), None)

    def _act(self, action: str, value: str | None = None) -> None:
        item = self._current()
        if item is None:
            return
        svc = self.services

        def work(ctx: JobContext) -> None:
            inbox_api.decide(svc, item["id"], action, value)

        def done(_r: object) -> None:
            svc.inbox_changed.emit()
            svc.profile_changed.emit()

        svc.jobs.start(work, name=f"inbox-{action}", on_done=done)

    def accept(self) -> None:
        self._act("accept")

    def reject(self) -> None:
        self._act("reject")

    def edit(self) -> None:
        item = self._current()
        if item is None:
            return
        value, ok = QInputDialog.getText(
            self,
            "Edit suggestion",
            f"Value for {item.get('key')}:",
            text=str(item.get("value", "")),
        )
        if ok and value.strip():
            self._act("edit", value.strip())

    def open_source(self) -> None:
        item = self._current()
        if item and item.get("source_memory"):
            show_memory(self.services, self, str(item["source_memory"]))
