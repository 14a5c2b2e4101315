"""Training screen: dataset preview, start and cancel a run of a tiny model, then a short run
becomes active."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("peft")
tiny_model = pytest.importorskip("tests.finetune.tiny_model")

from tests.gui.conftest import JobWatch, wait_idle  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    return tiny_model.build_tiny(tmp_path_factory.mktemp("gui-tiny"))


@pytest.fixture
def tiny_runtime(runtime, tiny):
    runtime.settings = runtime.settings.model_copy(
        update={"model_path": str(tiny.gguf), "inbox_use_model": False}
    )
    for text in (
        "I moved to Hamburg and live in Altona.",
        "I started working at Nordlicht Logistics as a data analyst.",
        "We adopted a grey cat and named her Pixel.",
    ):
        runtime.memory.remember(text)
    return runtime


@pytest.mark.slow
def test_start_and_cancel_then_train_and_activate(qtbot, window, tiny_runtime) -> None:
    from app.adapters import AdapterStore

    page = window.select("training")
    assert page.feature.available, page.feature.reason
    wait_idle(qtbot, window)  # the dataset preview and the adapter list
    assert page.dataset.topLevelItemCount() > 0
    assert "questions from your memories" in page.preview_label.text()
    assert page.adapters_empty.isVisible()

    page.offload.setCurrentIndex(page.offload.findData("none"))
    page.steps.setValue(400)
    run = JobWatch(window, "train")
    page.start_btn.click()
    assert page.job is not None and run.job is page.job
    assert page.cancel_btn.isEnabled() and not page.start_btn.isEnabled()
    run.wait_progress(
        qtbot, until=lambda e: e.get("phase") == "train" and e.get("loss") is not None
    )
    assert len(page.loss_plot.values) >= 1
    assert page.progress.maximum() == 400 and "step" in page.progress.text()
    assert "loss" in page.status.text()
    page.cancel_btn.click()
    run.wait(qtbot)
    assert page.job is None and run.done == [{"cancelled": True}]
    assert page.progress.text() == "cancelled"
    assert "unchanged" in page.status.text()
    assert AdapterStore(tiny_runtime.settings).active() is None

    page.steps.setValue(2)
    run = JobWatch(window, "train")
    page.start_btn.click()
    run.wait(qtbot)
    assert not run.failed, run.failed
    assert page.progress.text() == "finished", page.status.text()
    wait_idle(qtbot, window)  # the adapter list reloads
    assert page.adapters.topLevelItemCount() == 1
    row = page.adapters.topLevelItem(0)
    assert row.text(0) == "v0001" and row.text(4) == "active"
    assert Path(AdapterStore(tiny_runtime.settings).path("v0001"), "adapter.gguf").exists()

    page.rollback_btn.click()
    wait_idle(qtbot, window)
    assert page.adapters.topLevelItemCount() == 1 and page.adapters.topLevelItem(0).text(4) == ""
    assert AdapterStore(tiny_runtime.settings).active() is None
