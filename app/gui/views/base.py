"""Base class of every screen: a header, a Services handle and a lazy first load."""

from __future__ import annotations

from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.gui.services import Services
from app.gui.widgets import Banner, page_header


class Page(QWidget):
    title = ""
    subtitle = ""
    refresh_on_show = False  # reload each time the screen is shown (data other processes change)

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.setAccessibleName(f"{self.title} screen")
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(20, 16, 20, 16)
        self.layout_.setSpacing(10)
        self.layout_.addWidget(page_header(self.title, self.subtitle))
        self.banner = Banner(self)
        self.layout_.addWidget(self.banner)
        self._loaded = False

    def activate(self) -> None:
        """Called when the page is shown; loads its data the first time."""
        if not self._loaded or self.refresh_on_show:
            self._loaded = True
            self.refresh()

    def show_section(self, index: int) -> None:
        """Open a section (sub-tab) of this screen; screens with sections override it."""

    def refresh(self) -> None:  # pragma: no cover - overridden
        """Reload what the page shows (in a worker)."""

    def show_error(self, message: str) -> None:
        self.banner.show_message(message, timeout_ms=0)
