"""Chat screen: the short answer with its supporting quote, the evidence span highlighted, and
citation chips; abstention shows no quote; a streamed model answer can be stopped."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.gui.conftest import JobWatch

FACT = "My sister Elsa lives in Gothenburg and works as a botanist."
MARK_BACKGROUND = "#fde68a"  # app.gui.views.chat.MARK_STYLE


@pytest.fixture
def remembered(runtime):
    runtime.settings = runtime.settings.model_copy(update={"inbox_use_model": False})
    mem, _ = runtime.remember(FACT)
    runtime.remember("I bought a red bicycle from the market on Saturday.")
    return mem


def _highlighted(page) -> list[str]:
    """The texts of the conversation drawn on the evidence highlight."""
    doc = page.transcript.document()
    out: list[str] = []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            if frag.isValid() and frag.charFormat().background().color().name() == MARK_BACKGROUND:
                out.append(frag.text())
            it += 1
        block = block.next()
    return out


def _ask(qtbot, window, page, question: str) -> JobWatch:
    watch = JobWatch(window, "ask")  # connected before the job starts: nothing is missed
    page.ask(question)
    return watch.wait(qtbot)


def test_answer_shows_the_quote_with_the_evidence_span_highlighted(
    qtbot, window, runtime, remembered
) -> None:
    page = window.select("chat")
    assert page.feature.available, page.feature.reason
    assert page.stack.currentWidget() is page.empty
    page.input.setPlainText("Where does my sister Elsa live?")
    watch = JobWatch(window, "ask")
    page.send_btn.click()
    assert page.job is not None and page.stop_btn.isEnabled()
    watch.wait(qtbot)

    assert not watch.failed, watch.failed
    turn = page.turns[-1]
    assert not turn.status, turn.status
    assert "Gothenburg" in turn.answer
    assert turn.quote is not None and turn.quote.marked and turn.quote.marked in FACT
    assert turn.quote.before.startswith("On ")  # dated: "On 4 December 2026 you wrote: “..."
    shown = page.transcript.toPlainText()
    assert turn.answer in shown and turn.quote.text in shown
    assert _highlighted(page) == [turn.quote.marked]
    assert remembered.id in [c["id"] for c in turn.citations]
    assert len({c["id"] for c in turn.citations}) == len(turn.citations)  # one chip per memory
    assert page.chips and page.chips_row.isVisible()
    assert f"memex:{remembered.id}" in page.transcript.toHtml()
    assert page.send_btn.isEnabled() and not page.stop_btn.isEnabled()
    # composed from the memory's own words: the model was not loaded, and the screen says so
    assert not runtime.model_loaded and "model was not needed" in page.model_label.text()
    # the conversation is the screen's ChatSession: the next question sees this turn
    session = page.conversation.session
    assert [m.role for m in session.history] == ["user", "assistant"]
    assert session.turns[-1].quote == turn.quote


def test_abstention_shows_no_quote(qtbot, window, remembered) -> None:
    page = window.select("chat")
    watch = _ask(qtbot, window, page, "What is the name of my accountant?")
    assert not watch.failed, watch.failed
    turn = page.turns[-1]
    assert turn.answer and not turn.status
    assert turn.quote is None and _highlighted(page) == []
    assert "you wrote" not in page.transcript.toPlainText()


def test_quitting_saves_the_conversation_when_save_chats_is_on(
    qtbot, window, runtime, remembered
) -> None:
    runtime.settings = runtime.settings.model_copy(update={"save_chats": True})
    page = window.select("chat")
    _ask(qtbot, window, page, "Where does my sister Elsa live?")
    saved = JobWatch(window, "save-chat")
    page.shutdown()  # what closing the window does
    saved.wait(qtbot)
    assert not saved.failed, saved.failed
    mem = runtime.memory.get(saved.done[0])
    assert mem.kind == "chat"
    assert mem.text.startswith("Me: Where does my sister Elsa live?\nmemex: ")


@pytest.mark.slow
def test_stop_ends_generation_and_keeps_the_partial_answer(
    qtbot, window, runtime, remembered
) -> None:
    # free generation streams many pieces from the bundled model; stop after the first one
    runtime.settings = runtime.settings.model_copy(
        update={"answer_strategy": "generate", "max_answer_tokens": 48}
    )
    page = window.select("chat")

    def stop_on_first_piece(job) -> None:
        if job.name == "ask":
            window.services.jobs.started.disconnect(stop_on_first_piece)
            # Stop as the first piece leaves the worker (what the Stop button sets), not when
            # the GUI thread gets to it: by then a fast model may have finished the answer.
            job.signals.chunk.connect(
                lambda _piece: job.cancel(), Qt.ConnectionType.DirectConnection
            )

    watch = JobWatch(window, "ask")
    window.services.jobs.started.connect(stop_on_first_piece)
    page.ask("Where does my sister Elsa live and what does she work as?")
    watch.wait(qtbot)
    assert watch.chunks and page.turns[-1].status == "stopped"
    assert page.turns[-1].answer and page.turns[-1].quote is None
    # the model is free again: a second question is answered, by the model
    watch = _ask(qtbot, window, page, "Where does Elsa live?")
    assert not watch.failed, watch.failed
    assert page.turns[-1].answer and not page.turns[-1].status
    assert "Model:" in page.model_label.text() and "SmolLM2" in page.model_label.text()
