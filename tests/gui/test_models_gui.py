"""Models screen: settings are saved for the next answer; the MoE benchmark runs in a child
process."""

from __future__ import annotations

import json

import pytest

from tests.gui.conftest import JobWatch, wait_idle


def test_save_model_settings_writes_settings_json(qtbot, window, runtime, home) -> None:
    page = window.select("models")
    page.threads.setValue(2)
    page.moe_budget.setText("0.5")
    page.moe_policy.setCurrentText("lfu")
    page.save_btn.click()
    wait_idle(qtbot, window)
    assert "Saved" in page.saved_label.text()
    saved = json.loads((home / "settings.json").read_text())
    assert (saved["threads"], saved["moe_budget"], saved["moe_policy"]) == (2, "0.5", "lfu")
    assert window.services.settings.threads == 2


def test_bad_model_file_is_reported_when_answering(qtbot, window, runtime, tmp_path) -> None:
    page = window.select("models")
    bogus = tmp_path / "not-a-model.gguf"
    bogus.write_text("hello")
    page.model_path.setText(str(bogus))
    page.save_btn.click()
    wait_idle(qtbot, window)
    assert "Saved" in page.saved_label.text()
    runtime.memory.remember("My sister Elsa lives in Gothenburg.")
    runtime.settings.answer_strategy = "generate"  # the default answers without loading the model
    chat = window.select("chat")
    answer = JobWatch(window, "ask")
    chat.ask("Where does Elsa live?")
    answer.wait(qtbot)
    assert chat.job is None
    assert chat.turns[-1].status.startswith("error: ")
    assert "not-a-model.gguf" in chat.turns[-1].status
    assert chat.send_btn.isEnabled()


@pytest.mark.slow
def test_moe_benchmark_fills_the_table_and_the_hit_rate_plot(qtbot, window) -> None:
    page = window.select("models")
    if not page.moe.available:
        pytest.skip(page.moe.reason)
    page.bench_btn.click()
    assert page.bench_btn.text() == "Stop benchmark"
    qtbot.waitUntil(lambda: page.proc is None, timeout=300000)
    assert page.bench_table.topLevelItemCount() == 4, page.bench_status.text()
    assert len(page.hit_plot.values) == 4
    assert "experts" in page.bench_status.text()


def test_llamacpp_answer_plots_speed_and_explains_hit_rate(qtbot, window, runtime) -> None:
    runtime.settings.answer_strategy = "generate"  # speed is plotted when the model writes
    runtime.memory.remember("My cat is called Miso.")
    page = window.pages["models"]
    chat = window.select("chat")
    answer = JobWatch(window, "ask")
    chat.ask("What is my cat called?")
    answer.wait(qtbot)
    assert chat.job is None and not chat.turns[-1].status, chat.turns[-1].status
    assert page.speed_plot.values and all(v > 0 for v in page.speed_plot.values)
    assert "tokens/s on llama.cpp" in page.last_answer.text()
    assert page.hit_plot.values == []
    assert "Hit rate applies to MoE models" in page.hit_plot.empty_text


def test_moe_answer_fills_the_hit_rate_plot_from_the_cache_counters(
    qtbot, window, runtime, monkeypatch
) -> None:
    monkeypatch.setattr(
        "app.gui.answers.LIVE_EVERY_S", 0.0
    )  # a live sample per piece: the tiny model is fast
    page = window.pages["models"]
    if not page.moe.available:
        pytest.skip(page.moe.reason)
    runtime.settings = runtime.settings.model_copy(
        update={
            "backend": "moe",
            "moe_model": "tiny",
            "moe_device": "cpu",
            "max_answer_tokens": 48,
            "answer_strategy": "generate",
        }
    )
    runtime.memory.remember("My cat is called Miso.")
    seen: list[dict] = []
    window.services.generation_stats.connect(seen.append)
    chat = window.select("chat")
    for _ in range(2):  # the second answer runs on the already loaded backend: counters are deltas
        answer = JobWatch(window, "ask")
        chat.ask("What is my cat called?")
        answer.wait(qtbot)
        assert chat.job is None
        assert not chat.turns[-1].status.startswith("error"), chat.turns[-1].status
    finals = [s for s in seen if s.get("final")]
    live = [s for s in seen if s.get("live")]
    # Generated replies are verified before they stream, so live samples come as the
    # verified answer streams (after the model ran); the finals carry the counters.
    assert all(0.0 <= s["hit_rate"] <= 1.0 for s in live if "hit_rate" in s)
    assert len(finals) == 2 and all(s["backend"] == "moe" for s in finals)
    assert all(0.0 <= s["hit_rate"] <= 1.0 for s in finals)
    assert page.hit_plot.values and all(0.0 <= v <= 1.0 for v in page.hit_plot.values)
    assert "the MoE engine" in page.last_answer.text() and "hit rate" in page.last_answer.text()
    stats = runtime._backend._model.cache.stats  # read-only: the engine's own counters
    assert stats.hits + stats.misses > 0
