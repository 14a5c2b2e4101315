"""Memories: live search, the list, add / edit / forget with undo, import with progress, drag
and drop.

The Timeline and the review Inbox are sub-tabs of this screen (views/timeline.py, views/inbox.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressDialog,
    QPushButton,
    QStackedLayout,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.dialogs import MemoryEditor, MemoryViewer, fmt_when
from app.gui.services import Services
from app.gui.views.base import Page
from app.gui.views.importing import ImportMixin
from app.gui.views.inbox import InboxPanel
from app.gui.views.timeline import TimelinePanel
from app.gui.widgets import EmptyState
from app.gui.workers import Job, JobContext

LIST_LIMIT = 500
EMPTY = (
    "<p style='font-size:13pt'>No memories yet.</p>"
    "<p>Click <b>New memory</b> (Ctrl+N) to write one, <b>Import files</b> (Ctrl+I) to bring in "
    "notes, documents, e-mails or chat exports, or drop files and folders onto this window.</p>"
)
NO_HITS = (
    "<p>Nothing you remember matches this search.</p><p>Try other words, or clear the search.</p>"
)


def summary(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class MemoriesPage(ImportMixin, Page):
    title = "Memories"
    subtitle = (
        "Everything memex knows about you. Search, add, edit, forget: it all stays on this "
        "computer."
    )

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(services, parent)
        self.setAcceptDrops(True)
        self.rows: list[Any] = []  # what the list shows (Memory or SearchHit)
        self.import_job: Job | None = None
        self.progress: QProgressDialog | None = None
        self.editor: MemoryEditor | None = None
        self.last_forgotten: list[Any] = []

        bar = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search your memories… (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search memories")
        self.add_btn = QPushButton("New memory")
        self.add_btn.setObjectName("primary")
        self.add_btn.setToolTip("Write a new memory (Ctrl+N)")
        self.import_btn = QPushButton("Import files…")
        self.import_btn.setToolTip("Import notes, documents, e-mails, chat exports (Ctrl+I)")
        self.folder_btn = QPushButton("Import folder…")
        self.folder_btn.setToolTip("Import every supported file in a folder (Ctrl+Shift+I)")
        for b in (self.add_btn, self.import_btn, self.folder_btn):
            b.setAccessibleName(b.text().rstrip("…"))
        bar.addWidget(self.search, 1)
        bar.addWidget(self.add_btn)
        bar.addWidget(self.import_btn)
        bar.addWidget(self.folder_btn)
        self.layout_.addLayout(bar)

        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Memory views")
        self.layout_.addWidget(self.tabs, 1)

        # all memories -------------------------------------------------------------
        all_tab = QWidget()
        lay = QVBoxLayout(all_tab)
        lay.setContentsMargins(0, 8, 0, 0)
        holder = QWidget()
        self.list_stack = QStackedLayout(holder)
        self.tree = QTreeWidget()
        self.tree.setAccessibleName("Memories")
        self.tree.setHeaderLabels(["When", "Memory", "Source", "Kind"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setUniformRowHeights(True)
        head = self.tree.header()
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        head.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        head.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        head.setStretchLastSection(False)
        self.tree.setColumnWidth(2, 160)
        self.empty = EmptyState(EMPTY)
        self.list_stack.addWidget(self.empty)
        self.list_stack.addWidget(self.tree)
        lay.addWidget(holder, 1)
        actions = QHBoxLayout()
        self.count_label = QLabel("")
        self.count_label.setObjectName("muted")
        self.count_label.setAccessibleName("Memory count")
        self.open_btn = QPushButton("Open")
        self.edit_btn = QPushButton("Edit…")
        self.forget_btn = QPushButton("Forget")
        self.forget_btn.setToolTip("Forget the selected memories everywhere (Delete); you can undo")
        for b in (self.open_btn, self.edit_btn, self.forget_btn):
            b.setAccessibleName(b.text().rstrip("…") + " selected memory")
            b.setEnabled(False)
        actions.addWidget(self.count_label, 1)
        actions.addWidget(self.open_btn)
        actions.addWidget(self.edit_btn)
        actions.addWidget(self.forget_btn)
        lay.addLayout(actions)
        self.tabs.addTab(all_tab, "All memories")

        self.timeline = TimelinePanel(services)
        self.tabs.addTab(self.timeline, "Timeline")
        self.inbox = InboxPanel(services)
        self.tabs.addTab(self.inbox, "Review inbox")
        self.inbox.count_changed.connect(self._inbox_count)
        self.tabs.currentChanged.connect(self._tab_changed)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.search.returnPressed.connect(self.refresh)
        self.add_btn.clicked.connect(self.add_memory)
        self.import_btn.clicked.connect(self.import_files)
        self.folder_btn.clicked.connect(self.import_folder)
        self.open_btn.clicked.connect(self.open_selected)
        self.edit_btn.clicked.connect(self.edit_selected)
        self.forget_btn.clicked.connect(self.forget_selected)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.itemDoubleClicked.connect(lambda *_: self.open_selected())
        delete = QKeySequence(QKeySequence.StandardKey.Delete)
        QShortcut(delete, self.tree).activated.connect(self.forget_selected)
        undo = QKeySequence(QKeySequence.StandardKey.Undo)
        QShortcut(undo, self).activated.connect(self.undo_forget)
        services.memories_changed.connect(self._data_changed)

    # -- loading ----------------------------------------------------------------------
    def show_section(self, index: int) -> None:
        self.tabs.setCurrentIndex(index)

    def focus_search(self) -> None:
        self.tabs.setCurrentIndex(0)
        self.search.setFocus()
        self.search.selectAll()

    def refresh(self) -> None:
        query = self.search.text().strip()
        services = self.services

        def work(ctx: JobContext) -> tuple[str, list[Any], int]:
            store = services.memory()
            total = store.count()
            if query:
                return query, store.search(query, k=50), total
            return query, store.list(limit=LIST_LIMIT), total

        self.services.jobs.start(
            work, name="memories-load", on_done=self._show, on_error=self.show_error
        )

    def _show(self, result: tuple[str, list[Any], int]) -> None:
        query, rows, total = result
        if query != self.search.text().strip():
            return  # a newer search is on its way
        self.rows = rows
        self.tree.clear()
        for r in rows:
            when = fmt_when(r.when)
            item = QTreeWidgetItem([when, summary(r.text), _short_source(r.source), r.kind])
            item.setData(0, Qt.ItemDataRole.UserRole, r.id)
            item.setToolTip(1, summary(r.text, 600))
            item.setToolTip(2, r.source or "")
            if r.superseded_by:
                item.setToolTip(1, "Updated by a newer memory. " + summary(r.text, 500))
                for col in range(4):
                    item.setForeground(col, self.palette().placeholderText())
            self.tree.addTopLevelItem(item)
        if rows:
            self.list_stack.setCurrentWidget(self.tree)
        else:
            self.empty.setText(NO_HITS if query else EMPTY)
            self.list_stack.setCurrentWidget(self.empty)
        shown = (
            f"{len(rows)} match{'es' if len(rows) != 1 else ''}"
            if query
            else (
                f"{total} memor{'y' if total == 1 else 'ies'}"
                + (f", newest {len(rows)} shown" if total > len(rows) else "")
            )
        )
        if any(r.superseded_by for r in rows):
            shown += " · greyed: updated by a newer memory"
        self.count_label.setText(shown)
        self._selection_changed()

    def _data_changed(self) -> None:
        self.refresh()
        self.timeline.mark_stale()

    def _tab_changed(self, index: int) -> None:
        activate = getattr(self.tabs.widget(index), "activate", None)
        if callable(activate):
            activate()

    def _inbox_count(self, n: int) -> None:
        self.tabs.setTabText(2, f"Review inbox ({n})" if n else "Review inbox")

    def activate(self) -> None:
        super().activate()
        self.inbox.activate_count()

    # -- selection --------------------------------------------------------------------
    def selected_ids(self) -> list[str]:
        return [i.data(0, Qt.ItemDataRole.UserRole) for i in self.tree.selectedItems()]

    def _selection_changed(self) -> None:
        n = len(self.tree.selectedItems())
        self.open_btn.setEnabled(n == 1)
        self.edit_btn.setEnabled(n == 1)
        self.forget_btn.setEnabled(n >= 1)
        self.forget_btn.setText(f"Forget {n}" if n > 1 else "Forget")

    def open_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) == 1:
            store_get = self.services.memory
            self.services.jobs.start(
                lambda ctx: store_get().get(ids[0]),
                name="get-memory",
                on_done=lambda m: MemoryViewer(m, self).exec() if m else self.refresh(),
            )

    # -- add / edit -------------------------------------------------------------------
    def add_memory(self) -> None:
        self.editor = MemoryEditor(self)
        self.editor.accepted.connect(
            lambda: self.save_new(self.editor.values() if self.editor else {})
        )
        self.editor.open()

    def save_new(self, values: dict[str, Any]) -> None:
        rt = self.services

        def work(ctx: JobContext) -> tuple[Any, bool]:
            rt.memory()
            return rt.runtime.remember(
                values["text"],
                source=values.get("source"),
                at=values.get("at"),
                kind=values.get("kind") or "note",
            )

        def done(result: tuple[Any, bool]) -> None:
            _mem, created = result
            self.banner.show_message(
                "Remembered." if created else "memex already remembers exactly this."
            )
            self.services.memories_changed.emit()
            self.services.inbox_changed.emit()

        self.services.jobs.start(work, name="remember", on_done=done, on_error=self.show_error)

    def edit_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) != 1:
            return
        current = next((r for r in self.rows if r.id == ids[0]), None)
        full = self.services

        def load(ctx: JobContext) -> Any:
            return full.memory().get(ids[0])

        def show(mem: Any) -> None:
            if mem is None:
                self.refresh()
                return
            self.editor = MemoryEditor(self, text=mem.text, editing=True)
            self.editor.accepted.connect(
                lambda: self.save_edit(mem.id, self.editor.values()["text"] if self.editor else "")
            )
            self.editor.open()

        if current is not None:
            self.services.jobs.start(
                load, name="get-memory", on_done=show, on_error=self.show_error
            )

    def save_edit(self, memory_id: str, text: str) -> None:
        svc = self.services

        def done(_memory: Any) -> None:
            self.banner.show_message("Saved.")
            svc.memories_changed.emit()

        self.services.jobs.start(
            lambda ctx: svc.memory().update_text(memory_id, text),
            name="edit",
            on_done=done,
            on_error=self.show_error,
        )

    # -- forget / undo ----------------------------------------------------------------
    def forget_selected(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        svc = self.services

        def done(removed: list[Any]) -> None:
            self.last_forgotten = removed
            n = len(removed)
            self.banner.show_message(
                f"Forgot {n} memor{'y' if n == 1 else 'ies'} everywhere (search, answers, training "
                "data).",
                "Undo",
                self.undo_forget,
                timeout_ms=30000,
            )
            svc.memories_changed.emit()

        svc.jobs.start(
            lambda ctx: svc.memory().forget_returning(ids),
            name="forget",
            on_done=done,
            on_error=self.show_error,
        )

    def undo_forget(self) -> None:
        removed, self.last_forgotten = self.last_forgotten, []
        if not removed:
            return
        svc = self.services

        def done(_restored: Any) -> None:
            noun = "memory" if len(removed) == 1 else "memories"
            self.banner.show_message(f"Restored {len(removed)} {noun}.")
            svc.memories_changed.emit()

        svc.jobs.start(
            lambda ctx: svc.memory().restore(removed),
            name="restore",
            on_done=done,
            on_error=self.show_error,
        )

    # -- drag and drop ----------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.start_import(paths)


def _short_source(source: str | None) -> str:
    if not source:
        return ""
    return source.rstrip("/").rsplit("/", 1)[-1]
