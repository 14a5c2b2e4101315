"""Small shared widgets: page header, empty states, notices, undo banner, chips, line plot."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)


def page_header(title: str, subtitle: str = "") -> QWidget:
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 6)
    t = QLabel(title)
    t.setObjectName("pageTitle")
    t.setAccessibleName(f"{title} screen")
    lay.addWidget(t)
    if subtitle:
        s = QLabel(subtitle)
        s.setObjectName("muted")
        s.setWordWrap(True)
        lay.addWidget(s)
    return box


class EmptyState(QLabel):
    """A centred explanation of what this place is for and what to do to fill it."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setObjectName("emptyState")
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setAccessibleName("Empty state")


class Notice(QFrame):
    """A framed sentence, e.g. 'this feature is not installed yet, here is how to get it'."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notice")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 10)
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAccessibleName("Notice")
        lay.addWidget(self.label, 1)

    def set_text(self, text: str) -> None:
        self.label.setText(text)


class Banner(QFrame):
    """A transient message with one action (Undo, Retry); hides itself after a while."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setAccessibleName("Message")
        self.action = QPushButton()
        self.close_btn = QPushButton("Dismiss")
        self.close_btn.setAccessibleName("Dismiss message")
        lay.addWidget(self.label, 1)
        lay.addWidget(self.action)
        lay.addWidget(self.close_btn)
        self._callback: Callable[[], None] | None = None
        self.action.clicked.connect(self._act)
        self.close_btn.clicked.connect(self.hide)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_message(
        self,
        text: str,
        action: str = "",
        callback: Callable[[], None] | None = None,
        timeout_ms: int = 15000,
    ) -> None:
        self.label.setText(text)
        self._callback = callback
        self.action.setVisible(bool(action and callback))
        self.action.setText(action)
        self.action.setAccessibleName(action)
        self.show()
        if timeout_ms:
            self._timer.start(timeout_ms)

    def _act(self) -> None:
        callback, self._callback = self._callback, None
        self.hide()
        if callback:
            callback()


class Chip(QPushButton):
    """A rounded, clickable tag (citations, sources)."""

    def __init__(self, text: str, tooltip: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setObjectName("chip")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip(tooltip)
        self.setAccessibleName(f"Citation: {text}")
        self.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)


class LinePlot(QWidget):
    """A live line plot painted with QPainter (PySide6-Essentials has no QtCharts)."""

    changed = Signal()

    def __init__(
        self,
        title: str,
        unit: str = "",
        parent: QWidget | None = None,
        y_min: float | None = None,
        y_max: float | None = None,
        max_points: int = 600,
    ) -> None:
        super().__init__(parent)
        self.title = title
        self.unit = unit
        self.values: list[float] = []
        self.fixed_min = y_min
        self.fixed_max = y_max
        self.max_points = max_points
        self.empty_text = "No data yet."
        self.setMinimumHeight(150)
        self.setAccessibleName(f"{title} plot")

    def set_values(self, values: Sequence[float]) -> None:
        self.values = list(values)[-self.max_points :]
        self.update()
        self.changed.emit()

    def append(self, value: float) -> None:
        self.values.append(float(value))
        del self.values[: -self.max_points]
        self.update()
        self.changed.emit()

    def paintEvent(self, _event: object) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        r = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        p.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 1))
        p.setBrush(pal.color(QPalette.ColorRole.Base))
        p.drawRoundedRect(r, 6, 6)
        text_color = pal.color(QPalette.ColorRole.Text)
        p.setPen(text_color)
        fm = p.fontMetrics()
        p.drawText(QPointF(r.left() + 10, r.top() + 8 + fm.ascent()), self.title)
        plot = r.adjusted(48, 16 + fm.height(), -12, -10 - fm.height())
        if not self.values:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(
                plot, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.empty_text
            )
            return
        lo = self.fixed_min if self.fixed_min is not None else min(self.values)
        hi = self.fixed_max if self.fixed_max is not None else max(self.values)
        if hi - lo < 1e-9:
            hi, lo = hi + 0.5, lo - 0.5
        p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
        for frac, val in ((0.0, hi), (1.0, lo)):
            y = plot.top() + frac * plot.height()
            p.drawText(
                QRectF(r.left() + 2, y - fm.height() / 2, 42, fm.height()),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                _fmt(val),
            )
        last = f"last {_fmt(self.values[-1])}{(' ' + self.unit) if self.unit else ''}"
        p.drawText(
            QRectF(plot.left(), plot.bottom() + 4, plot.width(), fm.height()),
            Qt.AlignmentFlag.AlignRight,
            last,
        )
        n = len(self.values)
        if n == 1:  # one answer so far: a dot, not an empty plot
            y = plot.bottom() - plot.height() * (self.values[0] - lo) / (hi - lo)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(pal.color(QPalette.ColorRole.Highlight)))
            p.drawEllipse(QPointF(plot.center().x(), y), 4, 4)
            return
        path = QPainterPath()
        for i, v in enumerate(self.values):
            x = plot.left() + plot.width() * i / (n - 1)
            y = plot.bottom() - plot.height() * (v - lo) / (hi - lo)
            if i == 0:
                path.moveTo(x, y)
            else:
                path.lineTo(x, y)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(QColor(pal.color(QPalette.ColorRole.Highlight)), 2))
        p.drawPath(path)


def _fmt(v: float) -> str:
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"
