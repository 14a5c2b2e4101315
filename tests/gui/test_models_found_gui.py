"""Models screen: GGUF models found on this computer are listed and one click switches to one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gui.conftest import wait_idle


def test_found_models_are_listed_and_one_click_switches(
    qtbot, window, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.app.test_models_discovery import write_gguf

    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "no-ollama"))
    mine = write_gguf(home / "models" / "mine.gguf", "qwen2")
    write_gguf(home / "models" / "embed.gguf", "bert")
    page = window.select("models")
    page.refresh_found()
    wait_idle(qtbot, window)
    rows = {
        page.found.topLevelItem(i).text(0).lstrip("● "): page.found.topLevelItem(i)
        for i in range(page.found.topLevelItemCount())
    }
    assert {"smollm2-135m-instruct-q4_1", "memex/mine", "memex/embed"} <= set(rows)
    assert rows["smollm2-135m-instruct-q4_1"].text(0).startswith("● ")
    assert rows["memex/embed"].isDisabled() and "bert" in rows["memex/embed"].toolTip(0)
    assert page.leaves.text() == "Everything stays on this computer."

    page.found.setCurrentItem(rows["memex/mine"])
    page.use_btn.click()
    wait_idle(qtbot, window)
    assert json.loads((home / "settings.json").read_text())["model_path"] == str(mine)
    assert page.model_path.text() == str(mine)
    assert "Now answering with memex/mine" in page.found_status.text()
