"""Pairing crypto, as in KeePassXC-Browser: X25519 + XSalsa20-Poly1305 `crypto_box` (PyNaCl).

The host has one permanent key pair (bridge_dir/host.key, owner-only). Each paired browser
extension has its own permanent key pair; the user approves and names its public key. A
reply is sealed with the request's nonce + 1 (little-endian increment, libsodium's
`sodium_increment`), so a client can tell a reply belongs to its request.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

NONCE_SIZE = 24
KEY_SIZE = 32


class CryptoError(Exception):
    pass


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(text: object, size: int | None = None) -> bytes:
    if not isinstance(text, str) or len(text) > 2_000_000:
        raise CryptoError("expected a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise CryptoError("invalid base64") from exc
    if size is not None and len(data) != size:
        raise CryptoError(f"expected {size} bytes, got {len(data)}")
    return data


def increment_nonce(nonce: bytes) -> bytes:
    """nonce + 1 as a little-endian integer (wraps around), like sodium_increment."""
    value = (int.from_bytes(nonce, "little") + 1) % (1 << (8 * len(nonce)))
    return value.to_bytes(len(nonce), "little")


def fingerprint(public_key: bytes) -> str:
    """Short code the user compares between the extension and `memex bridge pair`."""
    digest = hashlib.sha256(public_key).digest()
    return base64.b32encode(digest).decode("ascii")[:8]


class HostKey:
    """The host's permanent X25519 key pair, created on first use."""

    def __init__(self, secret: bytes) -> None:
        from nacl.public import PrivateKey

        self._sk = PrivateKey(secret)
        self.public = bytes(self._sk.public_key)

    @classmethod
    def load_or_create(cls, bridge_dir: Path) -> HostKey:
        path = bridge_dir / "host.key"
        if path.exists():
            return cls(b64d(path.read_text(encoding="ascii").strip(), KEY_SIZE))
        from nacl.public import PrivateKey

        bridge_dir.mkdir(parents=True, exist_ok=True)
        secret = bytes(PrivateKey.generate())
        tmp = path.with_name(f"host.key.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(b64e(secret))
        try:
            os.link(tmp, path)  # first writer wins if two hosts start at once
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return cls(b64d(path.read_text(encoding="ascii").strip(), KEY_SIZE))

    def open(self, client_public: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
        from nacl.exceptions import CryptoError as NaclCryptoError
        from nacl.public import Box, PublicKey

        try:
            return Box(self._sk, PublicKey(client_public)).decrypt(ciphertext, nonce)
        except NaclCryptoError as exc:
            raise CryptoError("message could not be decrypted with the paired key") from exc

    def seal_reply(
        self, client_public: bytes, request_nonce: bytes, plaintext: bytes
    ) -> tuple[bytes, bytes]:
        """Encrypt a reply with nonce = request nonce + 1; returns (nonce, ciphertext)."""
        from nacl.public import Box, PublicKey

        nonce = increment_nonce(request_nonce)
        sealed = Box(self._sk, PublicKey(client_public)).encrypt(plaintext, nonce)
        return nonce, sealed.ciphertext
