"""Chat: ask about your life; the short answer streams in, the quote it rests on under it with
the evidence span highlighted, and the memories it cites as chips."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStackedLayout,
    QTextBrowser,
    QWidget,
)

from app.gui.answers import AnswerResult, Conversation, stream_answer
from app.gui.dialogs import show_memory
from app.gui.services import Services
from app.gui.views.base import Page
from app.gui.widgets import Chip, EmptyState, Notice
from app.gui.workers import Job, JobContext

if TYPE_CHECKING:
    from app.chat import MarkedQuote

# The evidence span inside the quote: a fixed light amber with dark text reads on both themes.
MARK_STYLE = "background-color:#fde68a; color:#202124; font-weight:600"
EMPTY = (
    "<p style='font-size:14pt'>Ask anything about your life.</p>"
    "<p>Answers come only from what you have told memex, and every answer shows the memories it "
    "rests on. Nothing leaves this computer.</p>"
    "<p>Try “Where do I live now?” or “When is my sister's birthday?”.<br>"
    "No memories yet? Add or import some on the <b>Memories</b> screen (Ctrl+2).</p>"
)


@dataclass
class Turn:
    question: str
    answer: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    quote: MarkedQuote | None = None
    status: str = ""  # "", "stopped", "error: ..."


class ChatPage(Page):
    title = "Chat"
    subtitle = "Answers from your own memories, generated on this computer."

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(services, parent)
        self.turns: list[Turn] = []
        self.conversation = Conversation(services.runtime)  # history the next question sees
        self.job: Job | None = None
        self._t0 = 0.0
        self._pieces = 0
        self.model_label = QLabel("Model: loads with your first question")
        self.model_label.setObjectName("muted")
        self.model_label.setAccessibleName("Model and adapter")
        self.layout_.addWidget(self.model_label)

        self.feature = services.ask_feature()
        self.notice = Notice(self.feature.reason)
        self.notice.setVisible(not self.feature.available)
        self.layout_.addWidget(self.notice)

        holder = QWidget()
        self.stack = QStackedLayout(holder)
        self.empty = EmptyState(EMPTY)
        self.transcript = QTextBrowser()
        self.transcript.setOpenLinks(False)
        self.transcript.setAccessibleName("Conversation")
        self.transcript.anchorClicked.connect(self._open_link)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.transcript)
        self.layout_.addWidget(holder, 1)

        self.chips_row = QWidget()
        self.chips_layout = QHBoxLayout(self.chips_row)
        self.chips_layout.setContentsMargins(0, 0, 0, 0)
        self.chips_row.setAccessibleName("Sources of the last answer")
        self.layout_.addWidget(self.chips_row)
        self.chips: list[Chip] = []

        row = QHBoxLayout()
        self.input = QPlainTextEdit()
        self.input.setPlaceholderText(
            "Ask a question about your life… (Enter to send, Shift+Enter for a new line)"
        )
        self.input.setAccessibleName("Question")
        self.input.setFixedHeight(64)
        self.input.installEventFilter(self)
        self.send_btn = QPushButton("Ask")
        self.send_btn.setObjectName("primary")
        self.send_btn.setAccessibleName("Ask")
        self.send_btn.setToolTip("Ask (Enter)")
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setAccessibleName("Stop answering")
        self.stop_btn.setToolTip("Stop answering (Esc)")
        self.stop_btn.setEnabled(False)
        row.addWidget(self.input, 1)
        row.addWidget(self.send_btn)
        row.addWidget(self.stop_btn)
        self.layout_.addLayout(row)
        self.send_btn.clicked.connect(self.ask)
        self.stop_btn.clicked.connect(self.stop)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self).activated.connect(self.stop)
        if not self.feature.available:
            self.input.setEnabled(False)
            self.input.setPlaceholderText("Answering is not installed in this build yet.")
            self.send_btn.hide()
            self.stop_btn.hide()

        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.timeout.connect(self._render)
        self._render()

    # -- input ------------------------------------------------------------------------
    def eventFilter(self, obj: Any, event: Any) -> bool:
        from PySide6.QtCore import QEvent

        if (
            obj is self.input
            and event.type() == QEvent.Type.KeyPress
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
            and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self.ask()
            return True
        return super().eventFilter(obj, event)

    def ask(self, question: str | None = None) -> None:
        if self.job is not None or not self.feature.available:
            return
        q = (question if isinstance(question, str) else self.input.toPlainText()).strip()
        if not q:
            return
        self.input.clear()
        turn = Turn(q)
        self.turns.append(turn)
        self._set_chips([])
        self._render()
        self.send_btn.setEnabled(False)
        self.stop_btn.setEnabled(True)
        self._t0 = time.perf_counter()
        self._pieces = 0
        services = self.services
        conversation = self.conversation

        def work(ctx: JobContext) -> AnswerResult:
            return stream_answer(services, conversation, q, ctx)

        self.job = services.jobs.start(
            work,
            name="ask",
            on_chunk=self._on_chunk,
            on_done=self._on_done,
            on_error=self._on_error,
            on_finished=self._on_finished,
            on_progress=self.services.generation_stats.emit,  # live speed / hit-rate samples
        )

    def stop(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.stop_btn.setEnabled(False)

    def shutdown(self) -> None:
        """Quitting: stop the answer, and keep the conversation when settings.save_chats is on
        (a worker stores it after the answer in flight is recorded; the app waits for it)."""
        self.stop()
        conversation = self.conversation
        if self.turns and self.services.settings.save_chats:
            self.services.jobs.start(lambda ctx: conversation.save(), name="save-chat")

    # -- stream -----------------------------------------------------------------------
    def _on_chunk(self, text: str) -> None:
        if not self.turns:
            return
        self.turns[-1].answer += text
        self._pieces += 1
        if not self._render_timer.isActive():
            self._render_timer.start(40)  # coalesce pieces: one repaint per frame, not per token

    def _on_done(self, result: AnswerResult) -> None:
        turn = self.turns[-1]
        if result.answer:  # verification may have replaced what streamed by a quote
            turn.answer = result.answer
        turn.citations = result.citations
        turn.quote = result.quote
        if result.stopped:
            turn.status = "stopped"
        desc = result.describe
        if result.used_model and desc:
            model = desc.get("model", "?")
            adapter = desc.get("adapter") or "none"
            self.model_label.setText(f"Model: {model} · Adapter: {adapter}")
        elif not result.used_model:
            self.model_label.setText(
                "Answered from your memories' own words; the model was not needed."
            )
        if result.stats:  # the model ran: its speed (and hit rate) go to the Models screen
            elapsed = max(1e-6, time.perf_counter() - self._t0 - result.retrieval_s)
            self.services.generation_stats.emit(
                {
                    "tok_s": result.tokens / elapsed if result.tokens else self._pieces / elapsed,
                    **result.stats,
                }
            )
        self._set_chips(turn.citations)

    def _on_error(self, message: str) -> None:
        if self.turns:
            self.turns[-1].status = f"error: {message}"

    def _on_finished(self) -> None:
        self.job = None
        self.send_btn.setEnabled(True)
        self.stop_btn.setEnabled(False)
        self._render()

    # -- view -------------------------------------------------------------------------
    def _set_chips(self, citations: list[dict[str, Any]]) -> None:
        for chip in self.chips:
            chip.deleteLater()
        self.chips = []
        while self.chips_layout.count():
            self.chips_layout.takeAt(0)
        if citations:
            label = QLabel("Sources:")
            label.setObjectName("muted")
            self.chips_layout.addWidget(label)
        for i, c in enumerate(citations, start=1):
            chip = Chip(_chip_text(i, c), tooltip=c.get("text", "")[:400])
            mid = c.get("id")
            chip.clicked.connect(lambda _=False, mid=mid: self.open_memory(mid))
            self.chips_layout.addWidget(chip)
            self.chips.append(chip)
        self.chips_layout.addStretch(1)
        self.chips_row.setVisible(bool(citations))

    def _render(self) -> None:
        if not self.turns:
            self.stack.setCurrentWidget(self.empty)
            return
        self.stack.setCurrentWidget(self.transcript)
        parts = []
        shade = self.palette().alternateBase().color().name()
        muted = _blend(self.palette().text().color(), self.palette().base().color())
        for t in self.turns:
            parts.append(
                f"<table width='100%' cellpadding='8' style='margin-top:10px' bgcolor='{shade}'>"
                f"<tr><td><b>You</b><br>{_para(t.question)}</td></tr></table>"
            )
            body = _answer_html(t, muted)
            if t.status == "stopped":
                body += " <i>(stopped)</i>"
            elif t.status.startswith("error"):
                body += f"<br><span style='color:#c5221f'>{html.escape(t.status[7:])}</span>"
            chips = " ".join(
                f"<a href='memex:{html.escape(str(c.get('id')))}' style='text-decoration:none'>"
                f"[{html.escape(_chip_text(i, c))}]</a>"
                for i, c in enumerate(t.citations, start=1)
            )
            parts.append(
                f"<p style='margin-left:8px'><b>memex</b><br>{body}</p>"
                + (f"<p style='margin-left:8px'>Sources: {chips}</p>" if chips else "")
            )
        bar = self.transcript.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        self.transcript.setHtml("".join(parts))
        if at_bottom:
            bar.setValue(bar.maximum())

    def _open_link(self, url: QUrl) -> None:
        text = url.toString()
        if text.startswith("memex:"):
            self.open_memory(text[len("memex:") :])

    def open_memory(self, memory_id: str | None) -> None:
        if memory_id:
            show_memory(self.services, self, memory_id)


def _answer_html(t: Turn, muted: str) -> str:
    """The answer, and under it the quote it rests on with the evidence span highlighted; an
    answer that is the quote itself (nothing shorter was supported) is shown once, marked."""
    if not t.answer:
        return "" if t.status else "<i>thinking…</i>"
    quote = t.quote
    if quote is None:
        return _para(t.answer)
    marked = quote.render(f"<span style='{MARK_STYLE}'>", "</span>", html.escape)
    if " ".join(t.answer.split()) == " ".join(quote.text.split()):
        return marked
    return f"{_para(t.answer)}<br><span style='color:{muted}'>{marked}</span>"


def _blend(fg: QColor, bg: QColor, weight: float = 0.62) -> str:
    """A muted text colour for rich text (the palette's placeholder colour relies on alpha)."""
    mix = [
        round(weight * f + (1 - weight) * b)
        for f, b in ((fg.red(), bg.red()), (fg.green(), bg.green()), (fg.blue(), bg.blue()))
    ]
    return QColor(*mix).name()


def _chip_text(i: int, c: dict[str, Any]) -> str:
    src = str(c.get("source") or "memory").rsplit("/", 1)[-1][:28]
    return f"{i} · {c['when']} · {src}" if c.get("when") else f"{i} · {src}"


def _para(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")
