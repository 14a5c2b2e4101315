"""The unlock screen: shown before the main window when the vault is on and memex is locked.

The passphrase is stretched by Argon2id (64 MiB, a fraction of a second) on a worker thread,
so the dialog stays responsive; the key is then held by this process's Runtime only (the
service the app hosts borrows that Runtime, so it is unlocked too).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from app.runtime import Runtime


class UnlockDialog(QDialog):
    """Ask for the passphrase until it opens the vault or the user cancels."""

    def __init__(self, runtime: Runtime, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runtime = runtime
        self.setWindowTitle("Unlock memex")
        self.setAccessibleName(self.windowTitle())
        self.setMinimumWidth(420)
        lay = QVBoxLayout(self)
        intro = QLabel(
            "memex is locked. Your memories are encrypted on disk; enter your vault "
            "passphrase to open them."
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.passphrase = QLineEdit()
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.passphrase.setPlaceholderText("Vault passphrase")
        self.passphrase.setAccessibleName("Vault passphrase")
        lay.addWidget(self.passphrase)
        self.error = QLabel()
        self.error.setObjectName("muted")
        self.error.setWordWrap(True)
        lay.addWidget(self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Unlock")
        self.buttons.accepted.connect(self.try_unlock)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self._result: dict[str, Any] = {}
        self._poll = QTimer(self)
        self._poll.setInterval(30)
        self._poll.timeout.connect(self._check)

    def try_unlock(self) -> None:
        text = self.passphrase.text()
        if not text:
            self.error.setText("Enter the passphrase first.")
            return
        self.buttons.setEnabled(False)
        self.error.setText("Unlocking…")
        self._result = {}
        home = self.runtime.settings.home
        threading.Thread(target=self._unwrap, args=(home, text, self._result), daemon=True).start()
        self._poll.start()

    @staticmethod
    def _unwrap(home: Any, passphrase: str, out: dict[str, Any]) -> None:
        from memory.vault import unlock_key

        try:
            out["key"] = unlock_key(home, passphrase=passphrase)
        except Exception as exc:  # one sentence for the user, whatever failed
            out["error"] = str(exc)
        out["done"] = True

    def _check(self) -> None:
        if not self._result.get("done"):
            return
        self._poll.stop()
        self.buttons.setEnabled(True)
        if "error" in self._result:
            self.error.setText(self._result["error"])
            self.passphrase.selectAll()
            self.passphrase.setFocus()
            return
        key = self._result.get("key")
        if key is not None:
            self.runtime.vault.hold(key)
        self.accept()


def is_locked(runtime: Runtime) -> bool:
    from app.errors import MemexError

    try:
        runtime.vault.key()
    except MemexError as exc:
        return exc.kind == "locked"
    return False


def ensure_unlocked(runtime: Runtime, parent: QWidget | None = None) -> bool:
    """True when memex can open its memory (vault off, already unlocked, or unlocked now)."""
    if not is_locked(runtime):
        return True
    dialog = UnlockDialog(runtime, parent)
    return dialog.exec() == QDialog.DialogCode.Accepted


class RelockWatch(QObject):
    """Auto-lock for the open app: after `vault_auto_lock_minutes` without memory use (and no
    job running) the store closes, the key is dropped and the unlock screen comes back over
    the window; cancelling it closes the app."""

    def __init__(self, window: QWidget, runtime: Runtime, interval_ms: int = 15000) -> None:
        super().__init__(window)
        self.window, self.runtime = window, runtime
        self._asking = False
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.check)
        self.timer.start()

    def check(self) -> None:
        services = getattr(self.window, "services", None)
        busy = services is not None and services.jobs.busy()
        if self._asking or busy or not self.runtime.vault.idle_expired():
            return
        self.runtime.lock()
        self._asking = True
        try:
            if not ensure_unlocked(self.runtime, self.window):
                self.window.close()
        finally:
            self._asking = False
