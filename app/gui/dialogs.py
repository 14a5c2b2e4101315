"""Dialogs: add or edit a memory, show a memory (opened from citation chips and profile)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from PySide6.QtCore import QDateTime, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

KINDS = ("note", "fact", "chat", "document")


def fmt_when(value: datetime | None) -> str:
    if value is None:
        return ""
    local = value.astimezone() if value.tzinfo else value
    return local.strftime("%Y-%m-%d")


class MemoryEditor(QDialog):
    """New memory (empty) or edit one (text only: date and source belong to the original)."""

    def __init__(
        self, parent: QWidget | None = None, *, text: str = "", editing: bool = False
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit memory" if editing else "New memory")
        self.setAccessibleName(self.windowTitle())
        self.resize(520, 320)
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.text = QPlainTextEdit(text)
        self.text.setPlaceholderText(
            "What should memex remember? e.g. “My dentist is Dr. Okafor on Elm Street.”"
        )
        self.text.setAccessibleName("Memory text")
        form.addRow("Text", self.text)
        self.kind = QComboBox()
        self.kind.addItems(KINDS)
        self.kind.setAccessibleName("Kind")
        self.source = QLineEdit()
        self.source.setPlaceholderText("optional, e.g. diary")
        self.source.setAccessibleName("Source")
        self.has_date = QCheckBox("It happened on")
        self.has_date.setAccessibleName("Set the date it happened")
        self.when = QDateTimeEdit(QDateTime.currentDateTime())
        self.when.setCalendarPopup(True)
        self.when.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.when.setEnabled(False)
        self.when.setAccessibleName("Date it happened")
        self.has_date.toggled.connect(self.when.setEnabled)
        if not editing:
            form.addRow("Kind", self.kind)
            form.addRow("Source", self.source)
            form.addRow(self.has_date, self.when)
        lay.addLayout(form)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.error = QLabel()
        self.error.setObjectName("muted")
        lay.addWidget(self.error)

    def _accept(self) -> None:
        if not self.text.toPlainText().strip():
            self.error.setText("Write something to remember first.")
            return
        self.accept()

    def values(self) -> dict[str, Any]:
        at = None
        if self.has_date.isChecked():
            local = cast(datetime, self.when.dateTime().toPython())  # naive, local time
            at = local.replace(tzinfo=None).astimezone(UTC)
        return {
            "text": self.text.toPlainText().strip(),
            "kind": self.kind.currentText(),
            "source": self.source.text().strip() or None,
            "at": at,
        }


class MemoryViewer(QDialog):
    """Read one memory: text, when, where it came from, and whether it was updated later."""

    def __init__(self, memory: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Memory")
        self.setAccessibleName("Memory details")
        self.resize(560, 360)
        lay = QVBoxLayout(self)
        meta = [f"<b>{fmt_when(memory.when)}</b>", memory.kind]
        if memory.source:
            meta.append(f"from {memory.source}")
        head = QLabel(" · ".join(meta))
        head.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(head)
        if memory.superseded_by:
            note = QLabel("A newer memory updated this one; answers prefer the newer one.")
            note.setObjectName("muted")
            note.setWordWrap(True)
            lay.addWidget(note)
        body = QPlainTextEdit(memory.text)
        body.setReadOnly(True)
        body.setAccessibleName("Memory text")
        lay.addWidget(body, 1)
        ident = QLabel(f"id {memory.id}")
        ident.setObjectName("muted")
        ident.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(ident)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        lay.addWidget(buttons)


def show_memory(services: Any, parent: QWidget, memory_id: str) -> None:
    """Fetch a memory in a worker, then show it (or say it is gone)."""
    from PySide6.QtWidgets import QMessageBox

    def done(memory: Any) -> None:
        if memory is None:
            QMessageBox.information(
                parent, "Memory", "This memory was forgotten; it is no longer stored."
            )
            return
        MemoryViewer(memory, parent).exec()

    services.jobs.start(
        lambda ctx: services.memory().get(memory_id),
        name="get-memory",
        on_done=done,
        on_error=lambda msg: QMessageBox.warning(parent, "Memory", msg),
    )
