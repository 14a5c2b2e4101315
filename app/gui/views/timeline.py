"""Timeline: memories by year and month (event time), with what a newer memory updated."""

from __future__ import annotations

from itertools import islice
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStackedLayout, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from app.gui.dialogs import show_memory
from app.gui.services import Services
from app.gui.widgets import EmptyState
from app.gui.workers import JobContext

MAX_ITEMS = 5000
EMPTY = (
    "<p>Your timeline is empty.</p><p>Memories appear here by the date they happened. "
    "Dated notes, e-mails and chat exports fill it best: import them on the <b>All memories</b> "
    "tab.</p>"
)


def summary(text: str, limit: int = 140) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class TimelinePanel(QWidget):
    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self._stale = True
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 8, 0, 0)
        holder = QWidget()
        self.stack = QStackedLayout(holder)
        self.empty = EmptyState(EMPTY)
        self.tree = QTreeWidget()
        self.tree.setAccessibleName("Timeline")
        self.tree.setHeaderLabels(["When", "What"])
        self.tree.setColumnWidth(0, 170)
        self.tree.itemDoubleClicked.connect(self._open)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.tree)
        lay.addWidget(holder)

    def mark_stale(self) -> None:
        self._stale = True
        if self.isVisible():
            self.activate()

    def activate(self) -> None:
        if not self._stale:
            return
        self._stale = False
        svc = self.services

        def work(ctx: JobContext) -> list[Any]:
            return list(islice(svc.memory().iter_memories(include_superseded=True), MAX_ITEMS))

        svc.jobs.start(work, name="timeline", on_done=self._show)

    def _show(self, memories: list[Any]) -> None:
        self.tree.clear()
        years: dict[str, QTreeWidgetItem] = {}
        months: dict[str, QTreeWidgetItem] = {}
        for m in sorted(memories, key=lambda m: m.when, reverse=True):
            when = m.when.astimezone() if m.when.tzinfo else m.when
            ykey, mkey = when.strftime("%Y"), when.strftime("%Y-%m")
            if ykey not in years:
                years[ykey] = QTreeWidgetItem([ykey, ""])
                self.tree.addTopLevelItem(years[ykey])
            if mkey not in months:
                months[mkey] = QTreeWidgetItem([when.strftime("%B"), ""])
                years[ykey].addChild(months[mkey])
            text = summary(m.text)
            if m.superseded_by:
                text = "(updated later) " + text
            item = QTreeWidgetItem([when.strftime("%a %d %b"), text])
            item.setData(0, Qt.ItemDataRole.UserRole, m.id)
            item.setToolTip(1, summary(m.text, 600))
            if m.superseded_by:
                for col in range(2):
                    item.setForeground(col, self.palette().placeholderText())
            months[mkey].addChild(item)
        for item in years.values():
            item.setText(1, f"{_count(item)} memories")
        for item in months.values():
            item.setText(1, f"{item.childCount()} memor{'y' if item.childCount() == 1 else 'ies'}")
        # Small timelines open fully; big ones open their latest year.
        open_years = list(years.values()) if len(memories) <= 200 else list(years.values())[:1]
        for year in open_years:
            year.setExpanded(True)
            for i in range(year.childCount()):
                month = year.child(i)
                if month is not None:
                    month.setExpanded(True)
        self.stack.setCurrentWidget(self.tree if memories else self.empty)

    def _open(self, item: QTreeWidgetItem, _col: int) -> None:
        mid = item.data(0, Qt.ItemDataRole.UserRole)
        if mid:
            show_memory(self.services, self, mid)


def _count(year: QTreeWidgetItem) -> int:
    months = (year.child(i) for i in range(year.childCount()))
    return sum(month.childCount() for month in months if month is not None)
