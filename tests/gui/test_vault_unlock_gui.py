"""The unlock screen: a wrong passphrase says so and stays; the right one unlocks the Runtime."""

from __future__ import annotations

from pathlib import Path

PASS = "correct horse battery"


def _locked_home(home: Path) -> None:
    import sqlite3

    from memory import vault
    from memory.vault_db import encrypt_database

    home.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(home / "memex.db").close()
    key = vault.new_data_key()
    encrypt_database(home, key, vault.wrap_key(key, PASS))


def test_unlock_dialog(qtbot, runtime, home, monkeypatch):
    from app.gui.unlock import UnlockDialog, ensure_unlocked, is_locked

    monkeypatch.delenv("MEMEX_PASSPHRASE", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert ensure_unlocked(runtime)  # vault off: nothing to ask
    _locked_home(home)
    assert is_locked(runtime)

    dialog = UnlockDialog(runtime)
    qtbot.addWidget(dialog)
    dialog.passphrase.setText("not the passphrase")
    dialog.try_unlock()
    qtbot.waitUntil(lambda: dialog.buttons.isEnabled(), timeout=30000)
    assert "wrong" in dialog.error.text() and dialog.result() == 0 and is_locked(runtime)

    dialog.passphrase.setText(PASS)
    with qtbot.waitSignal(dialog.accepted, timeout=30000):
        dialog.try_unlock()
    assert not is_locked(runtime)


def test_idle_app_locks_and_asks_again(qtbot, home, monkeypatch):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QWidget

    from app.gui.unlock import RelockWatch, UnlockDialog, is_locked
    from app.runtime import Runtime
    from app.settings import load_settings
    from memory import vault

    monkeypatch.delenv("MEMEX_PASSPHRASE", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    _locked_home(home)
    rt = Runtime(load_settings(home=home, vault_auto_lock_minutes=0.001))  # 60 ms
    rt.vault.hold(vault.unwrap_key(vault.read_vault(home), PASS))
    window = QWidget()
    qtbot.addWidget(window)
    watch = RelockWatch(window, rt, interval_ms=3_600_000)
    seen: list[bool] = []

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, UnlockDialog):
            QTimer.singleShot(20, answer)
            return
        seen.append(is_locked(rt))  # the key was dropped before the screen came back
        dialog.passphrase.setText(PASS)
        dialog.try_unlock()

    qtbot.wait(100)
    QTimer.singleShot(20, answer)
    watch.check()  # returns once the unlock screen was answered
    assert seen == [True] and not is_locked(rt)
    rt.close()
