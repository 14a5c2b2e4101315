"""Memories screen: add in the UI and find by search; forget with undo; import with progress and cancel."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QPushButton

from tests.gui.conftest import tree_texts, wait_idle


def test_add_memory_in_the_ui_then_find_it_by_search(qtbot, window, runtime) -> None:
    page = window.select("memories")
    wait_idle(qtbot, window)
    assert page.list_stack.currentWidget() is page.empty  # empty state explains what to do
    assert "New memory" in page.empty.text()

    page.add_btn.click()
    editor = page.editor
    assert editor is not None and editor.isVisible()
    editor.text.setPlainText("My bicycle lock code is 4512, the blue lock in the hallway.")
    qtbot.mouseClick(editor.buttons.button(QDialogButtonBox.StandardButton.Save), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any("bicycle lock" in t for t in tree_texts(page.tree)), timeout=60000)
    runtime.remember("We adopted a cat called Pepper from the shelter.")
    runtime.remember("The dentist appointment is on Friday at nine.")

    page.search.setText("what is the code of my bike lock")
    qtbot.waitUntil(lambda: "match" in page.count_label.text(), timeout=60000)
    assert "bicycle lock" in page.rows[0].text
    assert "bicycle lock" in tree_texts(page.tree)[0]


def test_forget_with_undo(qtbot, window, runtime) -> None:
    keep, _ = runtime.remember("I keep my passport in the blue folder.")
    gone, _ = runtime.remember("My old locker number at the gym is 117.")
    page = window.select("memories")
    qtbot.waitUntil(lambda: page.tree.topLevelItemCount() == 2, timeout=30000)

    for i in range(page.tree.topLevelItemCount()):
        item = page.tree.topLevelItem(i)
        item.setSelected(item.data(0, Qt.ItemDataRole.UserRole) == gone.id)
    assert page.forget_btn.isEnabled()
    page.forget_btn.click()
    qtbot.waitUntil(lambda: page.tree.topLevelItemCount() == 1 and page.banner.isVisible(), timeout=30000)
    assert runtime.memory.get(gone.id) is None
    assert [h.id for h in runtime.memory.search("locker number gym", k=5)] == [keep.id] or \
        gone.id not in [h.id for h in runtime.memory.search("locker number gym", k=5)]
    assert "Undo" == page.banner.action.text() and page.banner.action.isVisible()

    page.banner.action.click()
    qtbot.waitUntil(lambda: page.tree.topLevelItemCount() == 2, timeout=30000)
    restored = runtime.memory.get(gone.id)
    assert restored is not None and restored.text == gone.text
    assert gone.id in [h.id for h in runtime.memory.search("locker number at the gym", k=5)]


def _notes(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        (folder / f"note-{i:03d}.txt").write_text(f"Note {i}: on day {i} I planted tree number {i} by the river.\n")
    return folder


def test_import_folder_with_progress(qtbot, window, runtime, tmp_path) -> None:
    folder = _notes(tmp_path / "notes", 6)
    page = window.select("memories")
    wait_idle(qtbot, window)
    seen: list[int] = []
    job = page.start_import([folder])
    job.signals.progress.connect(lambda p: seen.append(p.done))
    assert page.progress is not None and page.progress.isVisible()
    qtbot.waitUntil(lambda: page.import_job is None, timeout=60000)
    assert page.progress is None  # the dialog closed itself
    assert runtime.memory.count() == 6
    assert seen and max(seen) == 6
    qtbot.waitUntil(lambda: page.tree.topLevelItemCount() == 6, timeout=30000)
    assert "Imported 6 memories" in page.banner.label.text()


def test_import_cancel_keeps_what_was_stored_and_nothing_half(qtbot, window, runtime, tmp_path) -> None:
    folder = _notes(tmp_path / "many", 300)
    page = window.select("memories")
    wait_idle(qtbot, window)
    reports: list[object] = []
    job = page.start_import([folder])
    job.signals.done.connect(reports.append)
    qtbot.waitUntil(lambda: page.progress is not None and page.progress.value() >= 1, timeout=60000)
    cancel = page.progress.findChild(QPushButton)
    assert cancel is not None and cancel.text() == "Cancel"
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.import_job is None, timeout=120000)
    assert reports and reports[0].cancelled
    assert reports[0].imported < 300
    assert runtime.memory.count() == reports[0].imported
    assert "cancelled" in page.banner.label.text()


def test_dropping_a_folder_imports_it(qtbot, window, runtime, tmp_path) -> None:
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    folder = _notes(tmp_path / "dropped", 3)
    page = window.select("memories")
    wait_idle(qtbot, window)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    page.dropEvent(event)
    assert page.import_job is not None
    qtbot.waitUntil(lambda: page.import_job is None, timeout=60000)
    assert runtime.memory.count() == 3
