"""Look and feel: follow the OS light/dark scheme, one small stylesheet built on palette roles."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from app.gui.theme_paths import assets_dir

ACCENT = "#3b6fd8"


def app_icon() -> QIcon:
    icons = assets_dir() / "icons"
    icon = QIcon()
    for name in ("memex.svg", "memex.png"):
        path = icons / name
        if path.exists():
            icon.addFile(str(path))
    return icon


def is_dark(app: QGuiApplication) -> bool:
    scheme = app.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        return True
    if scheme == Qt.ColorScheme.Light:
        return False
    # Unknown scheme: judge by the window colour the platform gave us.
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def _dark_palette() -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#202124",
        QPalette.ColorRole.WindowText: "#e8eaed",
        QPalette.ColorRole.Base: "#17181a",
        QPalette.ColorRole.AlternateBase: "#26282b",
        QPalette.ColorRole.Text: "#e8eaed",
        QPalette.ColorRole.Button: "#2d2f33",
        QPalette.ColorRole.ButtonText: "#e8eaed",
        QPalette.ColorRole.ToolTipBase: "#2d2f33",
        QPalette.ColorRole.ToolTipText: "#e8eaed",
        QPalette.ColorRole.PlaceholderText: "#9aa0a6",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#8ab4f8",
        QPalette.ColorRole.Mid: "#3c4043",
        QPalette.ColorRole.Midlight: "#34363a",
        QPalette.ColorRole.Dark: "#111214",
    }
    for role, color in roles.items():
        p.setColor(role, QColor(color))
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#80868b"))
    return p


def _light_palette(app: QApplication) -> QPalette:
    p = app.style().standardPalette()
    p.setColor(QPalette.ColorRole.Highlight, QColor(ACCENT))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    return p


STYLESHEET = """
#sidebar { border: none; outline: 0; background: palette(alternate-base); padding-top: 8px;
           font-size: 11pt; }
#sidebar::item { padding: 9px 14px; border-radius: 6px; margin: 1px 8px; }
#sidebar::item:selected { background: palette(highlight); color: palette(highlighted-text); }
QTreeView::item { padding: 3px 2px; }
QLabel#pageTitle { font-size: 16pt; font-weight: 600; }
QLabel#muted { color: palette(placeholder-text); }
QLabel#emptyState { color: palette(placeholder-text); font-size: 11pt; padding: 24px; }
QFrame#banner { background: palette(alternate-base); border: 1px solid palette(mid);
                border-radius: 6px; }
QFrame#notice { background: palette(alternate-base); border: 1px solid palette(mid);
                border-radius: 6px; }
QPushButton#chip { border: 1px solid palette(mid); border-radius: 10px; padding: 2px 10px;
                   background: palette(base); }
QPushButton#primary { background: palette(highlight); color: palette(highlighted-text);
                      border-radius: 5px; padding: 5px 14px; }
QPushButton#primary:disabled { background: palette(mid); }
"""


def apply_theme(app: QApplication) -> None:
    """Fusion style + a palette that matches the OS scheme; re-applied when the OS flips."""
    app.setStyle("Fusion")
    app.setPalette(_dark_palette() if is_dark(app) else _light_palette(app))
    app.setStyleSheet(STYLESHEET)


def follow_os_scheme(app: QApplication) -> None:
    app.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_theme(app))
