"""Profile shows where each value came from; the review inbox accepts into the profile; bridge
permissions."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.gui.conftest import tree_texts, wait_idle


@pytest.fixture
def patterns_only(runtime):
    # The inbox proposes from patterns only here; asking the model is the answers engineer's test.
    runtime.settings = runtime.settings.model_copy(update={"inbox_use_model": False})
    return runtime


def test_profile_shows_value_and_its_memory_then_edit_and_remove(
    qtbot, window, patterns_only
) -> None:
    runtime = patterns_only
    mem, _ = runtime.memory.remember("We moved to 7 Castle Mews in Cardiff last week.")
    runtime.memory.profile_set("address-level2", "Cardiff", source_memory=mem.id)
    page = window.select("profile")
    wait_idle(qtbot, window)
    assert page.tree.topLevelItemCount() == 1
    row = page.tree.topLevelItem(0)
    assert (row.text(0), row.text(1)) == ("City", "Cardiff")
    assert "Castle Mews" in row.text(2)

    page.save("address-level2", "Newport", mem.id)
    wait_idle(qtbot, window)  # saved, then the list reloads
    assert page.tree.topLevelItemCount() == 1 and page.tree.topLevelItem(0).text(1) == "Newport"
    assert [f.value for f in runtime.memory.profile()] == ["Newport"]
    page.tree.setCurrentItem(page.tree.topLevelItem(0))
    page.remove_btn.click()
    wait_idle(qtbot, window)
    assert page.stack.currentWidget() is page.empty
    assert runtime.memory.profile() == []
    assert "Add field" in page.empty.text()


def test_inbox_accept_moves_a_suggestion_into_the_profile(qtbot, window, patterns_only) -> None:
    runtime = patterns_only
    page = window.select("memories")
    wait_idle(qtbot, window)
    page.save_new({"text": "My email is maya.lindqvist@example.org.", "kind": "fact"})
    inbox = page.inbox
    wait_idle(qtbot, window)  # remembered (the inbox proposes on the way), then the inbox reloads
    assert inbox.tree.topLevelItemCount() >= 1
    assert page.tabs.tabText(2).startswith("Review inbox (")
    keys = tree_texts(inbox.tree, 0)
    assert "E-mail" in keys
    page.tabs.setCurrentWidget(inbox)
    inbox.tree.setCurrentItem(inbox.tree.topLevelItem(keys.index("E-mail")))
    assert inbox.accept_btn.isEnabled()
    inbox.accept_btn.click()
    wait_idle(qtbot, window)
    assert "E-mail" not in tree_texts(inbox.tree, 0)
    assert {f.key: f.value for f in runtime.memory.profile()}.get(
        "email"
    ) == "maya.lindqvist@example.org"
    profile = window.select("profile")
    wait_idle(qtbot, window)
    assert "maya.lindqvist@example.org" in tree_texts(profile.tree, 1)


def test_bridge_permit_and_revoke_a_site(qtbot, window) -> None:
    page = window.select("bridge")
    if not page.feature.available:
        pytest.skip(page.feature.reason)
    wait_idle(qtbot, window)
    assert page.browsers.topLevelItemCount() == 3
    assert not page.approve_btn.isEnabled() and not page.unpair_btn.isEnabled()  # nothing to act on
    page.site_edit.setText("shop.example")
    page.permit_btn.click()
    wait_idle(qtbot, window)
    assert tree_texts(page.sites, 0) == ["https://shop.example"]
    page.site_edit.setText("ftp://nope")
    page.permit_btn.click()
    wait_idle(qtbot, window)
    assert page.banner.isVisible()
    assert "Not a web site" in page.banner.label.text()
    page.sites.setCurrentItem(page.sites.topLevelItem(0))
    page.revoke_btn.click()
    wait_idle(qtbot, window)
    assert page.sites.topLevelItemCount() == 0
    actions = [page.audit.topLevelItem(i).text(1) for i in range(page.audit.topLevelItemCount())]
    assert actions[:2] == ["revoke", "permit"]
    assert page.audit.topLevelItem(0).data(0, Qt.ItemDataRole.DisplayRole)
