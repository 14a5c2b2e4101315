"""The first-fill confirmation asked in the desktop app: the values that cross host <-> app.

When a paired browser asks to fill a site it has not been confirmed for, the native host asks
the running app (the `confirm` op on the agent socket, see agent.py) to show a dialog: site,
browser, fields and the (masked) values that would go in; Allow once / Always allow / Deny.
The host blocks on that one request until the user answers or the TTL passes; with no app
running the extension's own confirmation is used instead.

Both directions are authenticated with HMAC-SHA256 under a secret the app writes next to its
socket (owner-only, fresh on every app start): a request the app did not get from a host that
can read the secret shows no dialog, and an answer the host did not get from that app is
refused. The answer carries the host's single-use token, so it is bound to its request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from app.bridge.fields import Classification, FieldDescriptor

Decision = Literal["once", "always", "deny", "timeout"]
DECISIONS: tuple[str, ...] = get_args(Decision)
DESKTOP_TTL_S = 45.0  # below the extension's 60 s request timeout, so a refusal reaches the page
SECRET_SIZE = 32
MAX_CONFIRM_FIELDS = 60  # what the dialog lists; the fill itself uses every classified field

# Profile kinds shown partly hidden in the dialog (someone may be looking at the screen);
# secrets (SENSITIVE_KINDS) never have a value at all.
MASKED_PREFIXES: tuple[str, ...] = (
    "tel",
    "bday",
    "street-address",
    "address-line",
    "postal-code",
    "sex",
)


class ConfirmError(Exception):
    """The app's answer cannot be used (unauthenticated, malformed); the fill is refused."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ConfirmField:
    ref: str
    label: str
    kind: str | None
    sensitive: bool
    preview: str  # masked value that would go in; "" when the field stays empty

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ConfirmRequest:
    """What the dialog shows. Built by the host; never carries a secret or an unmasked
    identifier."""

    token: str
    site: str
    browser: str  # the name the user gave the pairing
    code: str  # the pairing's fingerprint code
    ttl_s: float
    fields: tuple[ConfirmField, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "site": self.site,
            "browser": self.browser,
            "code": self.code,
            "ttl_s": self.ttl_s,
            "fields": [f.to_json() for f in self.fields],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConfirmRequest:
        try:
            fields = tuple(
                ConfirmField(
                    ref=str(f["ref"])[:200],
                    label=str(f.get("label", ""))[:120],
                    kind=None if f.get("kind") is None else str(f["kind"])[:40],
                    sensitive=bool(f.get("sensitive", False)),
                    preview=str(f.get("preview", ""))[:120],
                )
                for f in list(data.get("fields", []))[:MAX_CONFIRM_FIELDS]
            )
            ttl = float(data["ttl_s"])
            return cls(
                token=str(data["token"])[:64],
                site=str(data["site"])[:300],
                browser=str(data.get("browser", ""))[:80],
                code=str(data.get("code", ""))[:16],
                ttl_s=min(max(ttl, 1.0), 600.0),
                fields=fields,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfirmError(
                f"Malformed confirmation request ({exc.__class__.__name__}).", "malformed"
            ) from exc

    @property
    def filled(self) -> list[ConfirmField]:
        return [f for f in self.fields if f.preview]


@dataclass(frozen=True)
class ConfirmAnswer:
    token: str
    decision: Decision

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "decision": self.decision}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConfirmAnswer:
        decision = data.get("decision")
        if decision not in DECISIONS or not isinstance(data.get("token"), str):
            raise ConfirmError("The app's answer to the confirmation is malformed.", "malformed")
        return cls(token=str(data["token"]), decision=decision)


def build_request(
    *,
    token: str,
    site: str,
    browser: str,
    code: str,
    ttl_s: float,
    descriptors: Iterable[FieldDescriptor],
    verdicts: Iterable[Classification],
    profile: Mapping[str, str],
) -> ConfirmRequest:
    """The dialog's view of a fill: every recognised or secret field, with its masked value."""
    from app.bridge.values import value_for

    labels = {
        d.ref: d.label or d.aria_label or d.placeholder or d.name or d.ref for d in descriptors
    }
    fields = tuple(
        ConfirmField(
            ref=v.ref,
            label=labels.get(v.ref, v.ref)[:120],
            kind=v.kind,
            sensitive=v.sensitive,
            preview="" if v.sensitive else mask_value(v.kind, value_for(v.kind, profile) or ""),
        )
        for v in verdicts
        if v.kind is not None or v.sensitive
    )
    return ConfirmRequest(
        token=token,
        site=site,
        browser=browser,
        code=code,
        ttl_s=ttl_s,
        fields=fields[:MAX_CONFIRM_FIELDS],
    )


# -- masking --------------------------------------------------------------------------------
def mask_value(kind: str | None, value: str) -> str:
    """The value as the dialog shows it: identifiers partly hidden, everything else as is."""
    if not value:
        return ""
    if kind is None or not kind.startswith(MASKED_PREFIXES):
        return value[:120]
    text = " ".join(value.split())
    if len(text) <= 4:
        return "•" * len(text)
    keep = 2 if len(text) < 10 else 3
    return text[:keep] + "•" * min(len(text) - 2 * keep, 12) + text[-keep:]


# -- authentication -------------------------------------------------------------------------
def secret_path(socket_path: Path) -> Path:
    return socket_path.with_name(socket_path.name + ".key")


def create_secret(socket_path: Path) -> bytes:
    """A fresh secret next to the socket (0600, in the 0700 socket folder), replacing any old
    one."""
    path = secret_path(socket_path)
    secret = secrets.token_bytes(SECRET_SIZE)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret)
    os.replace(tmp, path)
    return secret


def read_secret(socket_path: Path) -> bytes | None:
    """The running app's secret, or None if there is none or anyone but its owner could read it."""
    path = secret_path(socket_path)
    try:
        st = os.lstat(path)
        if st.st_uid != os.getuid() or st.st_mode & 0o077 or not os.path.isfile(path):
            return None
        data = path.read_bytes()
    except OSError:
        return None
    return data if len(data) == SECRET_SIZE else None


def _canonical(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )


def sign(secret: bytes, purpose: str, obj: Mapping[str, Any]) -> str:
    # the purpose is part of the MAC, so a signed request can never pass as a signed answer
    return hmac.new(
        secret, purpose.encode("ascii") + b"\n" + _canonical(obj), hashlib.sha256
    ).hexdigest()


def verify(secret: bytes, purpose: str, obj: Mapping[str, Any], mac: object) -> bool:
    return isinstance(mac, str) and hmac.compare_digest(sign(secret, purpose, obj), mac)


REQUEST = "memex-confirm-request"
ANSWER = "memex-confirm-answer"
