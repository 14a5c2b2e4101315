"""A Python stand-in for the extension's service worker: pairing key, crypto_box, nonce checks.

Talks either to a BridgeService object or to a `memex bridge host` process over real frames.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nacl.public import Box, PrivateKey, PublicKey
from nacl.utils import random

from app.bridge.crypto import b64d, b64e, increment_nonce
from app.bridge.framing import encode_frame, read_frame

ROOT = Path(__file__).resolve().parents[2]


class HostProcess:
    """`python -m app.cli --home H bridge host`, spoken to with native-messaging frames."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "--home",
                str(home),
                "bridge",
                "host",
                "chrome-extension://x/",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        )

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def __call__(self, message: dict[str, Any]) -> dict[str, Any]:
        self.send_raw(encode_frame(message))
        return self.read()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        reply = read_frame(self.proc.stdout)
        assert reply is not None, self.proc.stderr.read().decode() if self.proc.stderr else ""
        return reply

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=30)
        finally:
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()


class FakeExtension:
    def __init__(
        self, transport: Callable[[dict[str, Any]], dict[str, Any]], key: PrivateKey | None = None
    ) -> None:
        self.transport = transport
        self.key = key or PrivateKey.generate()
        self.host_key: bytes | None = None
        self.code = ""
        self._id = 0
        self.last_envelope: dict[str, Any] = {}

    @property
    def public(self) -> str:
        return b64e(bytes(self.key.public_key))

    def hello(self) -> dict[str, Any]:
        reply = self.transport(
            {"action": "hello", "client_key": self.public, "client_name": "pytest"}
        )
        self.host_key = b64d(reply["host_key"])
        self.code = reply["code"]
        return reply

    def seal(
        self, inner: dict[str, Any], *, nonce: bytes | None = None, key: PrivateKey | None = None
    ) -> dict[str, Any]:
        assert self.host_key is not None
        nonce = nonce or random(24)
        payload = {"ts": time.time() * 1000, **inner}
        box = Box(key or self.key, PublicKey(self.host_key))
        sealed = box.encrypt(json.dumps(payload).encode(), nonce).ciphertext
        self._id += 1
        return {
            "action": "request",
            "id": self._id,
            "client_key": self.public,
            "nonce": b64e(nonce),
            "message": b64e(sealed),
        }

    def send(self, envelope: dict[str, Any]) -> dict[str, Any]:
        self.last_envelope = envelope
        reply = self.transport(envelope)
        if reply.get("action") != "response":
            return reply
        assert self.host_key is not None
        request_nonce = b64d(envelope["nonce"])
        assert b64d(reply["nonce"]) == increment_nonce(request_nonce), (
            "reply nonce must be request nonce + 1"
        )
        plain = Box(self.key, PublicKey(self.host_key)).decrypt(
            b64d(reply["message"]), b64d(reply["nonce"])
        )
        return dict(json.loads(plain))

    def request(self, inner: dict[str, Any]) -> dict[str, Any]:
        return self.send(self.seal(inner))


def field(ref: str, label: str = "", **kw: Any) -> dict[str, Any]:
    return {"ref": ref, "id": ref, "label": label, **kw}


SIGNUP_FIELDS = [
    field("given", "First name"),
    field("family", "Last name"),
    field("email", "Email", type="email"),
    field("pw", "Password", type="password"),
    field("card", "Card number"),
    field("about", "Tell us about yourself", tag="textarea", type="textarea"),
]
