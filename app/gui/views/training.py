"""Training screen (placeholder while the feature lands)."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from app.gui.services import Services
from app.gui.views.base import Page
from app.gui.widgets import Notice


class TrainingPage(Page):
    title = "Training"

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(services, parent)
        self.layout_.addWidget(Notice("Not installed in this build yet."))
        self.layout_.addStretch(1)
