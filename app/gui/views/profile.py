"""Profile: the fields memex uses for autofill, editable, each showing the memory it came from."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedLayout,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from app.gui.dialogs import fmt_when, show_memory
from app.gui.services import Services
from app.gui.views.base import Page
from app.gui.widgets import EmptyState
from app.gui.workers import JobContext

# WHATWG autocomplete field names -> what a person calls them.
FIELD_LABELS: dict[str, str] = {
    "name": "Full name",
    "given-name": "First name",
    "family-name": "Last name",
    "additional-name": "Middle name",
    "nickname": "Nickname",
    "email": "E-mail",
    "tel": "Phone",
    "street-address": "Street address",
    "address-line1": "Address line 1",
    "address-line2": "Address line 2",
    "address-level2": "City",
    "address-level1": "State / region",
    "postal-code": "Postal code",
    "country-name": "Country",
    "organization": "Employer",
    "organization-title": "Job title",
    "bday": "Birthday",
    "sex": "Gender",
    "url": "Website",
    "language": "Language",
}
EMPTY = (
    "<p>Your profile is empty.</p><p>These are the facts memex fills into web forms for you (name, "
    "e-mail, phone, address…). Accept suggestions in <b>Memories → Review inbox</b>, or click "
    "<b>Add field</b> to type one.</p>"
)


class FieldDialog(QDialog):
    def __init__(self, parent: QWidget | None, key: str = "", value: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Profile field")
        self.setAccessibleName("Profile field")
        form = QFormLayout(self)
        self.key = QComboBox()
        self.key.setEditable(True)
        self.key.setAccessibleName("Field")
        for k, label in FIELD_LABELS.items():
            self.key.addItem(f"{label} ({k})", k)
        if key:
            idx = self.key.findData(key)
            if idx >= 0:
                self.key.setCurrentIndex(idx)
            else:
                self.key.setEditText(key)
            self.key.setEnabled(False)
        self.value = QLineEdit(value)
        self.value.setAccessibleName("Value")
        form.addRow("Field", self.key)
        form.addRow("Value", self.value)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def result_values(self) -> tuple[str, str]:
        data = self.key.currentData()
        text = self.key.currentText()
        key = data if data and text == self.key.itemText(self.key.currentIndex()) else text.strip()
        return str(key), self.value.text().strip()


class ProfilePage(Page):
    title = "Profile"
    subtitle = (
        "What memex may fill into web forms for you. Values never leave this computer without "
        "your OK."
    )

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(services, parent)
        self.fields: list[dict[str, Any]] = []
        holder = QWidget()
        self.stack = QStackedLayout(holder)
        self.empty = EmptyState(EMPTY)
        self.tree = QTreeWidget()
        self.tree.setAccessibleName("Profile fields")
        self.tree.setHeaderLabels(["Field", "Value", "Came from", "Updated"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        head = self.tree.header()
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        head.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        head.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setColumnWidth(1, 260)
        head.setStretchLastSection(False)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.tree)
        self.layout_.addWidget(holder, 1)
        row = QHBoxLayout()
        hint = QLabel("Double-click “Came from” to read the memory behind a value.")
        hint.setObjectName("muted")
        row.addWidget(hint, 1)
        self.add_btn = QPushButton("Add field…")
        self.edit_btn = QPushButton("Edit…")
        self.remove_btn = QPushButton("Remove")
        for b in (self.add_btn, self.edit_btn, self.remove_btn):
            b.setAccessibleName(
                b.text().rstrip("…") + (" profile field" if b is not self.add_btn else "")
            )
            row.addWidget(b)
        self.layout_.addLayout(row)
        self.add_btn.clicked.connect(self.add_field)
        self.edit_btn.clicked.connect(self.edit_field)
        self.remove_btn.clicked.connect(self.remove_field)
        self.tree.itemDoubleClicked.connect(self._double_click)
        self.tree.itemSelectionChanged.connect(self._selection)
        services.profile_changed.connect(self.refresh)
        self._selection()

    def refresh(self) -> None:
        svc = self.services

        def work(ctx: JobContext) -> list[dict[str, Any]]:
            store = svc.memory()
            out = []
            for f in store.profile():
                mem = store.get(f.source_memory) if f.source_memory else None
                out.append(
                    {
                        "key": f.key,
                        "value": f.value,
                        "updated_at": f.updated_at,
                        "source_memory": f.source_memory if mem else None,
                        "source_text": " ".join(mem.text.split())[:160] if mem else "",
                    }
                )
            return out

        svc.jobs.start(work, name="profile", on_done=self._show, on_error=self.show_error)

    def _show(self, fields: list[dict[str, Any]]) -> None:
        self.fields = fields
        self.tree.clear()
        for f in fields:
            label = FIELD_LABELS.get(f["key"], f["key"])
            came = f["source_text"] or "typed by you"
            item = QTreeWidgetItem([label, f["value"], came, fmt_when(f["updated_at"])])
            item.setData(0, Qt.ItemDataRole.UserRole, f["key"])
            item.setToolTip(0, f["key"])
            item.setToolTip(2, f["source_text"])
            self.tree.addTopLevelItem(item)
        self.stack.setCurrentWidget(self.tree if fields else self.empty)
        self._selection()

    def _selection(self) -> None:
        on = bool(self.tree.selectedItems())
        self.edit_btn.setEnabled(on)
        self.remove_btn.setEnabled(on)

    def _key(self) -> str | None:
        sel = self.tree.selectedItems()
        return sel[0].data(0, Qt.ItemDataRole.UserRole) if sel else None

    def _double_click(self, item: QTreeWidgetItem, column: int) -> None:
        key = item.data(0, Qt.ItemDataRole.UserRole)
        f = next((x for x in self.fields if x["key"] == key), None)
        if column == 2 and f and f["source_memory"]:
            show_memory(self.services, self, f["source_memory"])
        else:
            self.edit_field()

    def add_field(self) -> None:
        dlg = FieldDialog(self)
        if dlg.exec():
            self.save(*dlg.result_values())

    def edit_field(self) -> None:
        key = self._key()
        f = next((x for x in self.fields if x["key"] == key), None)
        if f is None:
            return
        dlg = FieldDialog(self, f["key"], f["value"])
        if dlg.exec():
            self.save(f["key"], dlg.result_values()[1], f["source_memory"])

    def save(self, key: str, value: str, source_memory: str | None = None) -> None:
        if not key or not value:
            self.banner.show_message("A profile field needs a name and a value.")
            return
        svc = self.services
        svc.jobs.start(
            lambda ctx: svc.memory().profile_set(key, value, source_memory=source_memory),
            name="profile-set",
            on_done=lambda _f: svc.profile_changed.emit(),
            on_error=self.show_error,
        )

    def remove_field(self) -> None:
        key = self._key()
        if key is None:
            return
        svc = self.services
        svc.jobs.start(
            lambda ctx: svc.memory().profile_unset(key),
            name="profile-unset",
            on_done=lambda _r: svc.profile_changed.emit(),
            on_error=self.show_error,
        )
