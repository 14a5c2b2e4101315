"""Memories screen: add in the UI and find by search; forget with undo; import with progress and
cancel."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QPushButton

from tests.gui.conftest import JobWatch, tree_texts, wait_idle


def test_add_memory_in_the_ui_then_find_it_by_search(qtbot, window, runtime) -> None:
    page = window.select("memories")
    wait_idle(qtbot, window)
    assert page.list_stack.currentWidget() is page.empty  # empty state explains what to do
    assert "New memory" in page.empty.text()

    page.add_btn.click()
    editor = page.editor
    assert editor is not None and editor.isVisible()
    editor.text.setPlainText("My bicycle lock code is 4512, the blue lock in the hallway.")
    qtbot.mouseClick(
        editor.buttons.button(QDialogButtonBox.StandardButton.Save), Qt.MouseButton.LeftButton
    )
    wait_idle(qtbot, window)  # remember, then the list reloads (started before the first job ends)
    assert any("bicycle lock" in t for t in tree_texts(page.tree))
    runtime.remember("We adopted a cat called Pepper from the shelter.")
    runtime.remember("The dentist appointment is on Friday at nine.")

    search = JobWatch(window, "memories-load")
    page.search.setText("what is the code of my bike lock")  # the search starts after a short pause
    search.wait(qtbot)
    assert "match" in page.count_label.text()
    assert "bicycle lock" in page.rows[0].text
    assert "bicycle lock" in tree_texts(page.tree)[0]


def test_forget_with_undo(qtbot, window, runtime) -> None:
    keep, _ = runtime.remember("I keep my passport in the blue folder.")
    gone, _ = runtime.remember("My old locker number at the gym is 117.")
    page = window.select("memories")
    wait_idle(qtbot, window)
    assert page.tree.topLevelItemCount() == 2

    for i in range(page.tree.topLevelItemCount()):
        item = page.tree.topLevelItem(i)
        item.setSelected(item.data(0, Qt.ItemDataRole.UserRole) == gone.id)
    assert page.forget_btn.isEnabled()
    page.forget_btn.click()
    wait_idle(qtbot, window)
    assert page.tree.topLevelItemCount() == 1 and page.banner.isVisible()
    assert runtime.memory.get(gone.id) is None
    assert [h.id for h in runtime.memory.search("locker number gym", k=5)] == [
        keep.id
    ] or gone.id not in [h.id for h in runtime.memory.search("locker number gym", k=5)]
    assert "Undo" == page.banner.action.text() and page.banner.action.isVisible()

    page.banner.action.click()
    wait_idle(qtbot, window)
    assert page.tree.topLevelItemCount() == 2
    restored = runtime.memory.get(gone.id)
    assert restored is not None and restored.text == gone.text
    assert gone.id in [h.id for h in runtime.memory.search("locker number at the gym", k=5)]


def _notes(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        (folder / f"note-{i:03d}.txt").write_text(
            f"Note {i}: on day {i} I planted tree number {i} by the river.\n"
        )
    return folder


def test_import_folder_with_progress(qtbot, window, runtime, tmp_path) -> None:
    folder = _notes(tmp_path / "notes", 6)
    page = window.select("memories")
    wait_idle(qtbot, window)
    watch, reload = JobWatch(window, "import"), JobWatch(window, "memories-load")
    job = page.start_import([folder])
    assert watch.job is job
    assert page.progress is not None and page.progress.isVisible()
    watch.wait(qtbot)
    assert not watch.failed, watch.failed
    assert page.import_job is None and page.progress is None  # the dialog closed itself
    assert runtime.memory.count() == 6
    assert watch.progress and max(p.done for p in watch.progress) == 6
    assert "Imported 6 memories" in page.banner.label.text()
    reload.wait(qtbot)  # the import said the memories changed: the list reloads
    assert page.tree.topLevelItemCount() == 6


def test_import_cancel_keeps_what_was_stored_and_nothing_half(
    qtbot, window, runtime, tmp_path
) -> None:
    folder = _notes(tmp_path / "many", 300)
    page = window.select("memories")
    wait_idle(qtbot, window)
    watch = JobWatch(window, "import")
    page.start_import([folder])
    watch.wait_progress(qtbot, until=lambda p: p.done >= 1)
    assert page.progress is not None
    cancel = page.progress.findChild(QPushButton)
    assert cancel is not None and cancel.text() == "Cancel"
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    watch.wait(qtbot)
    assert page.import_job is None
    report = watch.done[0]
    assert report.cancelled
    assert report.imported < 300
    assert runtime.memory.count() == report.imported
    assert "cancelled" in page.banner.label.text()


def test_dropping_a_folder_imports_it(qtbot, window, runtime, tmp_path) -> None:
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    folder = _notes(tmp_path / "dropped", 3)
    page = window.select("memories")
    wait_idle(qtbot, window)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    watch = JobWatch(window, "import")
    page.dropEvent(event)
    assert page.import_job is not None and watch.job is page.import_job
    watch.wait(qtbot)
    assert page.import_job is None
    assert runtime.memory.count() == 3
