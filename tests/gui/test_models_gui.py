"""Models screen: settings are saved for the next answer; the MoE benchmark runs in a child process."""

from __future__ import annotations

import json

import pytest


def test_save_model_settings_writes_settings_json(qtbot, window, runtime, home) -> None:
    page = window.select("models")
    page.threads.setValue(2)
    page.moe_budget.setText("0.5")
    page.moe_policy.setCurrentText("lfu")
    page.save_btn.click()
    qtbot.waitUntil(lambda: "Saved" in page.saved_label.text(), timeout=30000)
    saved = json.loads((home / "settings.json").read_text())
    assert (saved["threads"], saved["moe_budget"], saved["moe_policy"]) == (2, "0.5", "lfu")
    assert window.services.settings.threads == 2


def test_bad_model_file_is_reported_when_answering(qtbot, window, runtime, tmp_path) -> None:
    page = window.select("models")
    bogus = tmp_path / "not-a-model.gguf"
    bogus.write_text("hello")
    page.model_path.setText(str(bogus))
    page.save_btn.click()
    qtbot.waitUntil(lambda: "Saved" in page.saved_label.text(), timeout=30000)
    runtime.memory.remember("My sister Elsa lives in Gothenburg.")
    chat = window.select("chat")
    chat.ask("Where does Elsa live?")
    qtbot.waitUntil(lambda: chat.job is None, timeout=120000)
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
