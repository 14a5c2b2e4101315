"""Training screen: dataset preview, start and cancel a run of a tiny model, then a short run becomes active."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("peft")
tiny_model = pytest.importorskip("tests.finetune.tiny_model")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    return tiny_model.build_tiny(tmp_path_factory.mktemp("gui-tiny"))


@pytest.fixture
def tiny_runtime(runtime, tiny):
    runtime.settings = runtime.settings.model_copy(update={"model_path": str(tiny.gguf), "inbox_use_model": False})
    for text in ("I moved to Hamburg and live in Altona.",
                 "I started working at Nordlicht Logistics as a data analyst.",
                 "We adopted a grey cat and named her Pixel."):
        runtime.memory.remember(text)
    return runtime


@pytest.mark.slow
def test_start_and_cancel_then_train_and_activate(qtbot, window, tiny_runtime) -> None:
    from app.adapters import AdapterStore

    page = window.select("training")
    assert page.feature.available, page.feature.reason
    qtbot.waitUntil(lambda: page.dataset.topLevelItemCount() > 0, timeout=60000)
    assert "questions from your memories" in page.preview_label.text()
    assert page.adapters_empty.isVisible()

    page.offload.setCurrentIndex(page.offload.findData("none"))
    page.steps.setValue(400)
    page.start_btn.click()
    assert page.job is not None and page.cancel_btn.isEnabled() and not page.start_btn.isEnabled()
    qtbot.waitUntil(lambda: len(page.loss_plot.values) >= 1, timeout=240000)
    assert page.progress.maximum() == 400 and "step" in page.progress.text()
    assert "loss" in page.status.text()
    page.cancel_btn.click()
    qtbot.waitUntil(lambda: page.job is None, timeout=120000)
    assert page.progress.text() == "cancelled"
    assert "unchanged" in page.status.text()
    assert AdapterStore(tiny_runtime.settings).active() is None

    page.steps.setValue(2)
    page.start_btn.click()
    qtbot.waitUntil(lambda: page.job is None, timeout=300000)
    assert page.progress.text() == "finished", page.status.text()
    qtbot.waitUntil(lambda: page.adapters.topLevelItemCount() == 1, timeout=30000)
    row = page.adapters.topLevelItem(0)
    assert row.text(0) == "v0001" and row.text(4) == "active"
    assert Path(AdapterStore(tiny_runtime.settings).path("v0001"), "adapter.gguf").exists()

    page.rollback_btn.click()
    qtbot.waitUntil(lambda: page.adapters.topLevelItemCount() == 1 and page.adapters.topLevelItem(0).text(4) == "",
                    timeout=30000)
    assert AdapterStore(tiny_runtime.settings).active() is None
