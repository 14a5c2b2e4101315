"""The bridge's request handling, independent of how frames arrive (stdin, tests, benchmark).

Envelope (plain JSON from the extension's service worker):
  {"action": "hello", "client_key": B64, "client_name": str}
      -> {"action": "hello", "host_key", "paired", "code", "name"}; an unknown key becomes a
         pending pairing the user approves and names with `memex bridge pair CODE --name N`.
  {"action": "request", "id", "client_key", "nonce": B64(24), "message": B64(crypto_box)}
      -> {"action": "response", "id", "nonce": request nonce + 1, "message": B64(crypto_box)}
Errors are plain {"action": "error", "id", "error", "kind"}; they never carry values.

Inner messages (encrypted JSON; `origin`/`top_origin` are added by the service worker from
what the browser says about the sender, never from the page): "fill", "confirm", "draft",
"ping". Every request carries `ts` (ms); stale or replayed nonces are refused.

First fill on a site: with the desktop app running, the host asks the app to confirm (see
confirm.py) and answers the `fill` itself once the user decided: Allow once fills, Always
allow also records the site for this browser, Deny and no answer within the TTL refuse.
Without the app, the reply is {"status": "confirm", "token"} and the extension asks.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.bridge.classify import classify_form
from app.bridge.confirm import (
    DESKTOP_TTL_S,
    ConfirmAnswer,
    ConfirmError,
    ConfirmRequest,
    build_request,
)
from app.bridge.crypto import KEY_SIZE, NONCE_SIZE, CryptoError, HostKey, b64d, b64e, fingerprint
from app.bridge.fields import FREETEXT, Classification, FieldDescriptor, FormContext
from app.bridge.state import MAX_PENDING, NONCE_WINDOW_S, BridgeState, SiteError, normalize_site
from app.bridge.values import fill_values
from app.errors import MemexError

MAX_FIELDS = 500
CONFIRM_TTL_S = 300.0
ANSWER_SLACK_S = 2.0  # an Allow clicked just before the app's TTL still has to travel back


class MemoryAccess(Protocol):
    """How the bridge reads memory: directly from the store or through the running app."""

    def profile(self) -> dict[str, str]: ...
    def draft(self, question: str) -> dict[str, Any]: ...


class DesktopConfirm(Protocol):
    """Asks the user in the desktop app; None when no app can ask (the extension asks then)."""

    def ask(self, request: ConfirmRequest) -> ConfirmAnswer | None: ...


class BridgeFault(Exception):
    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Hello(BaseModel):
    action: Literal["hello"]
    client_key: str
    client_name: str = Field("browser", max_length=80)


class _Request(BaseModel):
    action: Literal["request"]
    id: int | str | None = None
    client_key: str
    nonce: str
    message: str


class _Inner(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["fill", "confirm", "draft", "ping"]
    ts: float
    origin: str = ""
    top_origin: str = ""
    fields: list[FieldDescriptor] = Field(default_factory=list, max_length=MAX_FIELDS)
    token: str = ""
    ref: str = ""
    question: str = Field("", max_length=2000)


@dataclass
class _PendingConfirm:
    client_key: str
    site: str
    verdicts: list[Classification]
    expires: float


@dataclass
class BridgeService:
    state: BridgeState
    host_key: HostKey
    memory: MemoryAccess
    clock: Callable[[], float] = time.time
    desktop: DesktopConfirm | None = None
    desktop_ttl_s: float = DESKTOP_TTL_S
    _confirms: dict[str, _PendingConfirm] = field(default_factory=dict)

    # -- envelope --------------------------------------------------------------------------
    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        req_id = message.get("id") if isinstance(message.get("id"), (int, str)) else None
        try:
            action = message.get("action")
            if action == "hello":
                return {**self._hello(_Hello.model_validate(message)), "id": req_id}
            if action == "request":
                return self._request(_Request.model_validate(message))
            raise BridgeFault(f"Unknown action {str(action)[:40]!r}.", "malformed")
        except ValidationError as exc:
            return _error(
                req_id, f"Malformed message: {exc.errors()[0].get('msg', 'invalid')}.", "malformed"
            )
        except BridgeFault as exc:
            return _error(req_id, str(exc), exc.kind)
        except MemexError as exc:  # from the memory route, e.g. "memex is locked" (the vault)
            return _error(req_id, exc.message, exc.kind)

    def _hello(self, hello: _Hello) -> dict[str, Any]:
        key = _client_key(hello.client_key)
        code = fingerprint(key)
        pairing = self.state.pairing(hello.client_key)
        if pairing is None and not self.state.request_pairing(
            hello.client_key, code, hello.client_name
        ):
            raise BridgeFault(
                f"{MAX_PENDING} pairing requests are already waiting; approve yours with "
                "`memex bridge pair CODE --name NAME` or try again in 15 minutes.",
                "pairing_full",
            )
        return {
            "action": "hello",
            "host_key": b64e(self.host_key.public),
            "paired": pairing is not None,
            "code": code,
            "name": pairing.name if pairing else None,
        }

    def _request(self, req: _Request) -> dict[str, Any]:
        client = _client_key(req.client_key)
        pairing = self.state.pairing(req.client_key)
        if pairing is None:
            raise BridgeFault(
                "This browser is not paired; run `memex bridge pair` to approve it.", "unpaired"
            )
        try:
            nonce = b64d(req.nonce, NONCE_SIZE)
            plaintext = self.host_key.open(client, nonce, b64d(req.message))
        except CryptoError as exc:
            raise BridgeFault(f"Request rejected: {exc}.", "bad_key") from exc
        try:
            inner = _Inner.model_validate_json(plaintext)
        except ValidationError as exc:
            raise BridgeFault(
                f"Malformed request: {exc.errors()[0].get('msg', 'invalid')}.", "malformed"
            ) from exc
        if abs(self.clock() - inner.ts / 1000.0) > NONCE_WINDOW_S:
            raise BridgeFault("Request is too old or from the future; check the clock.", "stale")
        if not self.state.use_nonce(req.client_key, req.nonce):
            raise BridgeFault("Nonce already used; replayed request refused.", "replay")
        self.state.touch(req.client_key)
        reply = self._dispatch(inner, req.client_key, pairing.name)
        reply_nonce, sealed = self.host_key.seal_reply(
            client,
            nonce,
            json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        )
        return {
            "action": "response",
            "id": req.id,
            "nonce": b64e(reply_nonce),
            "message": b64e(sealed),
        }

    # -- inner messages --------------------------------------------------------------------
    def _dispatch(self, inner: _Inner, client_key: str, pairing: str) -> dict[str, Any]:
        if inner.type == "ping":
            return {"status": "pong"}
        site = self._site(inner, pairing)
        if inner.type == "fill":
            return self._fill(inner, site, client_key, pairing)
        if inner.type == "confirm":
            return self._confirm(inner, site, client_key, pairing)
        if not self.state.confirmed(site, client_key):
            raise BridgeFault(
                f"Fill a form on {site} once before asking for drafts there.", "not_confirmed"
            )
        return self._draft(inner, site, pairing)

    def _site(self, inner: _Inner, pairing: str) -> str:
        try:
            origin = normalize_site(inner.origin)
            top = normalize_site(inner.top_origin or inner.origin)
        except SiteError as exc:
            raise BridgeFault(
                f"Request from a page memex cannot fill ({exc}).", "bad_origin"
            ) from exc
        if origin != top:
            self.state.audit("refused", top, [], pairing=pairing, outcome="cross-origin-frame")
            raise BridgeFault(
                f"Refused: a frame from {origin} inside {top} cannot be filled.", "cross_origin"
            )
        if not self.state.permitted(origin):
            self.state.audit("refused", origin, [], pairing=pairing, outcome="not-permitted")
            raise BridgeFault(
                f"{origin} is not permitted; run `memex bridge permit {origin}` first.",
                "not_permitted",
            )
        return origin

    def _fill(self, inner: _Inner, site: str, client_key: str, pairing: str) -> dict[str, Any]:
        verdicts = classify_form(inner.fields, FormContext(page_origin=site))
        listing = [v.to_json() for v in verdicts]
        if not self.state.confirmed(site, client_key):
            self._expire()
            token = secrets.token_urlsafe(18)
            if self.desktop is not None:
                expires = self.clock() + self.desktop_ttl_s + ANSWER_SLACK_S
                self._confirms[token] = _PendingConfirm(client_key, site, verdicts, expires)
                answer = self._ask_desktop(token, inner, verdicts, site, client_key, pairing)
                if answer is not None:
                    return self._desktop_answer(answer, site, client_key, pairing)
            self._confirms[token] = _PendingConfirm(
                client_key, site, verdicts, self.clock() + CONFIRM_TTL_S
            )
            return {"status": "confirm", "token": token, "site": site, "fields": listing}
        return self._values(verdicts, site, pairing, listing)

    # -- first fill confirmed in the desktop app ------------------------------------------
    def _ask_desktop(
        self,
        token: str,
        inner: _Inner,
        verdicts: list[Classification],
        site: str,
        client_key: str,
        pairing: str,
    ) -> ConfirmAnswer | None:
        assert self.desktop is not None
        try:
            request = build_request(
                token=token,
                site=site,
                browser=pairing,
                code=fingerprint(_client_key(client_key)),
                ttl_s=self.desktop_ttl_s,
                descriptors=inner.fields,
                verdicts=verdicts,
                profile=self.memory.profile(),
            )
            answer = self.desktop.ask(request)
        except ConfirmError as exc:
            self._confirms.pop(token, None)
            self.state.audit(
                "refused", site, [], pairing=pairing, outcome=exc.kind.replace("_", "-")
            )
            raise BridgeFault(str(exc), exc.kind) from exc
        if answer is None:
            self._confirms.pop(token, None)
        return answer

    def _desktop_answer(
        self, answer: ConfirmAnswer, site: str, client_key: str, pairing: str
    ) -> dict[str, Any]:
        pending = self._confirms.pop(answer.token, None)
        if pending is None or pending.client_key != client_key or pending.site != site:
            self.state.audit("refused", site, [], pairing=pairing, outcome="bad-token")
            raise BridgeFault("Unknown or expired confirmation; ask to fill again.", "bad_token")
        if answer.decision in ("once", "always") and pending.expires < self.clock():
            self.state.audit("refused", site, [], pairing=pairing, outcome="bad-token")
            raise BridgeFault("Unknown or expired confirmation; ask to fill again.", "bad_token")
        if answer.decision == "deny":
            self.state.audit("refused", site, [], pairing=pairing, outcome="denied")
            raise BridgeFault(f"You denied filling this form on {site} in the memex app.", "denied")
        if answer.decision == "timeout":
            self.state.audit("refused", site, [], pairing=pairing, outcome="confirm-timeout")
            raise BridgeFault(
                "Nobody answered memex's confirmation in time; fill again to retry.",
                "confirm_timeout",
            )
        if answer.decision == "always":
            self.state.confirm(site, client_key)
        self.state.audit("confirm", site, [], pairing=pairing, outcome=answer.decision)
        return self._values(
            pending.verdicts, site, pairing, [v.to_json() for v in pending.verdicts]
        )

    def _confirm(self, inner: _Inner, site: str, client_key: str, pairing: str) -> dict[str, Any]:
        self._expire()
        pending = self._confirms.get(inner.token)
        if pending is None or pending.client_key != client_key or pending.site != site:
            raise BridgeFault("Unknown or expired confirmation; ask to fill again.", "bad_token")
        del self._confirms[inner.token]  # single use
        self.state.confirm(site, client_key)
        self.state.audit("confirm", site, [], pairing=pairing)
        return self._values(
            pending.verdicts, site, pairing, [v.to_json() for v in pending.verdicts]
        )

    def _values(
        self, verdicts: list[Classification], site: str, pairing: str, listing: list[dict[str, Any]]
    ) -> dict[str, Any]:
        values = fill_values(verdicts, self.memory.profile())
        kinds = {v.ref: v.kind for v in verdicts}
        self.state.audit("fill", site, [str(kinds[r]) for r in values], pairing=pairing)
        freetext = [v.ref for v in verdicts if v.kind == FREETEXT]
        return {
            "status": "fill",
            "site": site,
            "values": values,
            "freetext": freetext,
            "fields": listing,
        }

    def _draft(self, inner: _Inner, site: str, pairing: str) -> dict[str, Any]:
        if not inner.question.strip():
            raise BridgeFault("A draft needs the question's text.", "malformed")
        result = self.memory.draft(inner.question)
        self.state.audit("draft", site, [FREETEXT], pairing=pairing)
        # shown to the user next to the field; the extension never writes it into the page
        return {
            "status": "draft",
            "ref": inner.ref,
            "text": str(result.get("text", "")),
            "abstained": bool(result.get("abstained", False)),
            "citations": result.get("citations", []),
        }

    def _expire(self) -> None:
        now = self.clock()
        for token in [t for t, p in self._confirms.items() if p.expires < now]:
            del self._confirms[token]


def _client_key(text: str) -> bytes:
    try:
        return b64d(text, KEY_SIZE)
    except CryptoError as exc:
        raise BridgeFault(f"Invalid client key: {exc}.", "malformed") from exc


def _error(req_id: int | str | None, message: str, kind: str) -> dict[str, Any]:
    return {"action": "error", "id": req_id, "error": message, "kind": kind}
