"""The first-fill confirmation in the desktop app: a window-level dialog, never modal.

A browser host asks over the app's socket (app/bridge/agent.py, op `confirm`); the socket
thread calls `ConfirmBroker.ask`, which hands the request to the GUI thread through a queued
signal and waits for the user's answer (or the TTL). The dialog lists the site, the paired
browser, the fields and the masked values that would go in; Allow once / Always allow this
site / Deny. Closing it, Esc, or no answer in time refuses. The host records the decision
(bridge state + audit) when the answer reaches it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.bridge.confirm import ConfirmAnswer, ConfirmField, ConfirmRequest, Decision

KIND_NAMES = {
    "given-name": "first name",
    "family-name": "last name",
    "additional-name": "middle name",
    "name": "full name",
    "tel": "phone",
    "tel-national": "phone",
    "email": "email",
    "street-address": "street address",
    "address-line1": "address line 1",
    "address-line2": "address line 2",
    "address-level2": "city",
    "address-level1": "region",
    "postal-code": "postal code",
    "country-name": "country",
    "country": "country",
    "bday": "birthday",
    "organization": "organization",
    "freetext": "free text",
}


@dataclass
class PendingConfirm:
    """One question to the user, shared by the socket thread (waits) and the GUI thread
    (answers)."""

    request: ConfirmRequest
    deadline: float  # time.monotonic()
    event: threading.Event = field(default_factory=threading.Event)
    decision: Decision | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, decision: Decision) -> bool:
        """The first decision wins (a click racing the TTL); True if this one was taken."""
        with self._lock:
            if self.decision is not None:
                return False
            self.decision = decision
        self.event.set()
        return True

    @property
    def left_s(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


class ConfirmBroker(QObject):
    """Lives on the GUI thread; `ask` is called from socket threads and blocks until answered."""

    requested = Signal(object)  # PendingConfirm, for the window to show

    def ask(self, request: ConfirmRequest) -> ConfirmAnswer:  # socket thread
        pending = PendingConfirm(request, time.monotonic() + request.ttl_s)
        self.requested.emit(pending)  # queued onto the GUI thread: no widget is touched here
        if not pending.event.wait(request.ttl_s):
            pending.decide("timeout")  # the dialog sees it on its next tick and closes
        assert pending.decision is not None
        return ConfirmAnswer(request.token, pending.decision)


def field_row(f: ConfirmField) -> list[str]:
    """Field, what it is, what would go in: the dialog's table row."""
    label = f.label or f.ref
    if f.sensitive:
        return [label, "secret", "never filled"]
    what = KIND_NAMES.get(f.kind or "", (f.kind or "").replace("-", " "))
    if f.kind == "freetext":
        return [label, what, "drafted only if you ask, never filled"]
    return [label, what, f.preview or "(not in your profile: left empty)"]


class ConfirmDialog(QDialog):
    """Allow once / Always allow this site / Deny. Non-modal; Deny is the default button."""

    decided = Signal(str)

    def __init__(self, pending: PendingConfirm, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pending = pending
        req = pending.request
        self.setWindowTitle(f"memex: fill a form on {req.site}?")
        self.setAccessibleName("Confirm first fill")
        self.setModal(False)
        self.setWindowModality(Qt.WindowModality.NonModal)
        # the user is in the browser when this appears: keep it above other windows
        self.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint, True)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        self.setMinimumWidth(560)
        lay = QVBoxLayout(self)
        lay.setSpacing(10)
        head = QLabel(
            f"<span style='font-size:13pt'><b>Fill this form on {_esc(req.site)}?</b></span>"
        )
        head.setTextFormat(Qt.TextFormat.RichText)
        head.setAccessibleName("Site")
        lay.addWidget(head)
        who = QLabel(
            f"Asked by your browser “{_esc(req.browser)}” (pairing code {_esc(req.code)}). "
            "This is its first fill on this site; nothing has been sent yet."
        )
        who.setTextFormat(Qt.TextFormat.RichText)
        who.setWordWrap(True)
        who.setAccessibleName("Browser pairing")
        lay.addWidget(who)
        self.table = QTreeWidget()
        self.table.setHeaderLabels(["Field on the page", "Kind", "memex would fill"])
        self.table.setRootIsDecorated(False)
        self.table.setAccessibleName("Fields and values")
        self.table.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.header().setStretchLastSection(True)
        for f in req.fields:
            self.table.addTopLevelItem(QTreeWidgetItem(field_row(f)))
        if not req.fields:
            self.table.addTopLevelItem(
                QTreeWidgetItem(["", "", "No field on this page matches your profile."])
            )
        # tall enough for every row up to ten (then it scrolls), and no taller
        rows = max(1, min(self.table.topLevelItemCount(), 10))
        row_h = max(self.table.sizeHintForRow(0), self.fontMetrics().height() + 6)
        self.table.setFixedHeight(self.table.header().sizeHint().height() + rows * row_h + 8)
        lay.addWidget(self.table)
        note = QLabel(
            "Phone numbers, birthdays and addresses are shown partly hidden. Passwords, card "
            "numbers and one-time codes are never filled."
        )
        note.setObjectName("muted")
        note.setWordWrap(True)
        lay.addWidget(note)
        self.countdown = QLabel()
        self.countdown.setObjectName("muted")
        self.countdown.setAccessibleName("Time left to answer")
        lay.addWidget(self.countdown)

        row = QHBoxLayout()
        self.deny_btn = QPushButton("Deny")
        self.deny_btn.setAccessibleName("Deny this fill")
        self.once_btn = QPushButton("Allow once")
        self.once_btn.setAccessibleName("Allow this fill once")
        self.always_btn = QPushButton("Always allow this site")
        self.always_btn.setObjectName("primary")
        self.always_btn.setAccessibleName(f"Always allow {req.site} for this browser")
        for b in (self.deny_btn, self.once_btn, self.always_btn):
            b.setAutoDefault(False)
        self.deny_btn.setDefault(True)  # Enter pressed by accident refuses, never sends
        row.addWidget(self.deny_btn)
        row.addStretch(1)
        row.addWidget(self.once_btn)
        row.addWidget(self.always_btn)
        lay.addLayout(row)
        self.deny_btn.clicked.connect(lambda: self.answer("deny"))
        self.once_btn.clicked.connect(lambda: self.answer("once"))
        self.always_btn.clicked.connect(lambda: self.answer("always"))
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, lambda: self.answer("deny"))

        self._timer = QTimer(self)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self._tick()
        self.deny_btn.setFocus()

    def answer(self, decision: Decision) -> None:
        if self.pending.decide(decision):
            self.decided.emit(decision)
        self._timer.stop()
        self.close()

    def _tick(self) -> None:
        left = self.pending.left_s
        if left <= 0 or self.pending.decision is not None:
            self.answer("timeout")  # a no-op if the socket thread or a click got there first
            return
        self.countdown.setText(f"No answer within {left:.0f} s refuses the fill.")

    def closeEvent(self, event: QCloseEvent) -> None:
        # the window's close button: same as Deny
        if self.pending.decision is None and self.pending.decide("deny"):
            self.decided.emit("deny")
        self._timer.stop()
        super().closeEvent(event)


def _esc(text: str) -> str:
    import html

    return html.escape(text)


# -- a realistic preview for `memex gui --screenshot --tab bridge-confirm` -------------------
PREVIEW_FORM = (  # a ticket shop's checkout form, as the content script would describe it
    {"ref": "fname", "label": "First name", "autocomplete": "given-name"},
    {"ref": "lname", "label": "Last name"},
    {"ref": "mail", "label": "Email address", "type": "email"},
    {"ref": "phone", "label": "Mobile phone", "type": "tel"},
    {"ref": "addr", "label": "Street address"},
    {"ref": "zip", "label": "Postcode"},
    {"ref": "pw", "label": "Create a password", "type": "password"},
    {"ref": "cc", "label": "Card number", "autocomplete": "cc-number"},
    {"ref": "notes", "label": "Anything we should know?", "tag": "textarea", "type": "textarea"},
)


def preview_request(runtime: object, ttl_s: float = 45.0) -> ConfirmRequest:
    """The request a host would send for PREVIEW_FORM on the first permitted site (worker
    thread)."""
    import hashlib

    from app.bridge.classify import classify_form
    from app.bridge.confirm import build_request
    from app.bridge.fields import FieldDescriptor, FormContext
    from app.bridge.state import open_state

    settings = runtime.settings  # type: ignore[attr-defined]
    state = open_state(settings, getattr(runtime, "vault", None))
    try:
        pairing = next(iter(state.pairings()), None)
        fresh = [
            s
            for s in state.sites()
            if pairing is None or not state.confirmed(s, pairing.client_key)
        ]
    finally:
        state.close()
    site = (
        fresh[-1] if fresh else "https://tickets.example"
    )  # a site this browser has not filled yet
    fields = [FieldDescriptor.model_validate(f) for f in PREVIEW_FORM]
    verdicts = classify_form(fields, FormContext(page_origin=site))
    profile = {f.key: f.value for f in runtime.memory.profile()}  # type: ignore[attr-defined]
    browser = pairing.name if pairing else "Laptop Chromium"
    code = pairing.code if pairing else hashlib.sha256(site.encode()).hexdigest()[:8].upper()
    return build_request(
        token="preview",
        site=site,
        browser=browser,
        code=code,
        ttl_s=ttl_s,
        descriptors=fields,
        verdicts=verdicts,
        profile=profile,
    )
