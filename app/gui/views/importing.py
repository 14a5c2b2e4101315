"""Importing files and folders into memory with a progress dialog and cancel (part of Memories)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QProgressDialog

from app.gui.workers import Job, JobContext

if TYPE_CHECKING:  # the mixin is only ever mixed into a Page (services, banner, show_error)
    from app.gui.views.base import Page

    _PageBase = Page
else:
    _PageBase = object


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ImportMixin(_PageBase):
    """Adds import_files / import_folder / start_import to a Page (needs self.services,
    self.banner)."""

    import_job: Job | None = None
    progress: QProgressDialog | None = None

    # -- import -----------------------------------------------------------------------
    def import_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self,
            "Import into memex",
            str(Path.home()),
            "Supported (*.txt *.md *.pdf *.eml *.jsonl *.json *.html);;All files (*)",
        )
        if files:
            self.start_import([Path(f) for f in files])

    def import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Import a folder into memex", str(Path.home())
        )
        if folder:
            self.start_import([Path(folder)])

    def start_import(self, paths: list[Path]) -> Job | None:
        if self.import_job is not None:
            self.banner.show_message(
                "An import is already running; wait for it or cancel it first."
            )
            return None
        self.progress = QProgressDialog("Preparing the import…", "Cancel", 0, 0, self)
        self.progress.setWindowTitle("Importing")
        self.progress.setAccessibleName("Import progress")
        self.progress.setWindowModality(Qt.WindowModality.WindowModal)
        self.progress.setMinimumDuration(0)
        self.progress.setMinimumWidth(460)
        self.progress.setAutoClose(False)
        self.progress.setAutoReset(False)
        svc = self.services

        def work(ctx: JobContext) -> Any:
            svc.memory()
            return svc.runtime.import_paths(
                paths, progress=ctx.progress, cancel=lambda: ctx.cancelled
            )

        self.import_job = svc.jobs.start(
            work,
            name="import",
            on_progress=self._import_progress,
            on_done=self._import_done,
            on_error=self.show_error,
            on_finished=self._import_finished,
        )
        self.progress.canceled.connect(self.cancel_import)
        self.progress.show()
        return self.import_job

    def cancel_import(self) -> None:
        if self.import_job is not None:
            self.import_job.cancel()
            if self.progress is not None:
                self.progress.setLabelText("Cancelling… what is already imported is kept.")

    def _import_progress(self, p: Any) -> None:
        if self.progress is None or (self.import_job and self.import_job.cancelled):
            return
        self.progress.setMaximum(max(1, int(getattr(p, "total", 0))))
        self.progress.setValue(int(getattr(p, "done", 0)))
        phase = getattr(p, "phase", "reading")
        self.progress.setLabelText(
            f"{phase.capitalize()} {getattr(p, 'done', 0)} of {getattr(p, 'total', 0)}: "
            f"{_short(Path(str(getattr(p, 'path', ''))).name)}"
        )

    def _import_done(self, report: Any) -> None:
        skipped = len(getattr(report, "skipped", []) or [])
        errors = getattr(report, "errors", []) or []
        head = "Import cancelled; kept" if getattr(report, "cancelled", False) else "Imported"
        noun = "memory" if report.imported == 1 else "memories"
        text = f"{head} {report.imported} {noun} ({report.chunks} chunks)"
        if skipped:
            text += f"; skipped {skipped} file{'s' if skipped != 1 else ''}"
        if errors:
            text += f"; {len(errors)} could not be read (first: {errors[0].get('reason', '')})"
        self.banner.show_message(text + ".", timeout_ms=0)
        self.services.memories_changed.emit()
        self.services.inbox_changed.emit()

    def _import_finished(self) -> None:
        self.import_job = None
        if self.progress is not None:
            self.progress.close()
            self.progress.deleteLater()
            self.progress = None
