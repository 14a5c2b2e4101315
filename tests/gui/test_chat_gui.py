"""Chat screen: a streamed answer from the real bundled model, with a citation chip; stop works."""

from __future__ import annotations

import pytest

from tests.gui.conftest import wait_idle


@pytest.fixture
def remembered(runtime):
    runtime.settings = runtime.settings.model_copy(update={"inbox_use_model": False})
    mem, _ = runtime.remember("My sister Elsa lives in Gothenburg and works as a botanist.")
    runtime.remember("I bought a red bicycle from the market on Saturday.")
    return mem


@pytest.mark.slow
def test_ask_streams_an_answer_with_a_citation(qtbot, window, runtime, remembered) -> None:
    page = window.select("chat")
    assert page.feature.available, page.feature.reason
    assert page.stack.currentWidget() is page.empty
    page.input.setPlainText("Where does my sister Elsa live?")
    page.send_btn.click()
    assert page.job is not None and page.stop_btn.isEnabled()
    pieces: list[str] = []
    page.job.signals.chunk.connect(pieces.append)
    qtbot.waitUntil(lambda: page.job is None, timeout=300000)

    turn = page.turns[-1]
    assert not turn.status, turn.status
    assert len(pieces) > 1  # streamed, not delivered in one piece
    assert turn.answer.strip()
    assert remembered.id in [c["id"] for c in turn.citations]
    assert page.chips and page.chips_row.isVisible()
    assert "Model:" in page.model_label.text() and "SmolLM2" in page.model_label.text()
    assert f"memex:{remembered.id}" in page.transcript.toHtml()
    assert page.send_btn.isEnabled() and not page.stop_btn.isEnabled()


@pytest.mark.slow
def test_stop_ends_generation_and_keeps_the_partial_answer(qtbot, window, runtime, remembered) -> None:
    page = window.select("chat")
    page.ask("Tell me everything about my sister Elsa, in detail.")
    first: list[str] = []
    page.job.signals.chunk.connect(lambda p: (first.append(p), page.stop()) if not first else None)
    qtbot.waitUntil(lambda: page.job is None, timeout=300000)
    assert page.turns[-1].status == "stopped"
    wait_idle(qtbot, window)
    # the model is free again: a second question is answered
    page.ask("Where does Elsa live?")
    qtbot.waitUntil(lambda: page.job is None, timeout=300000)
    assert page.turns[-1].answer and not page.turns[-1].status
