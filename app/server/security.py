"""Request guards for the local API: token file, Host/Origin checks, rate limit.

Designed against the localhost incidents in ANCHORS.md: DNS rebinding (a page on an
attacker's domain that resolves to 127.0.0.1 sends `Host: attacker.example`), cross-site
requests (a browser always sends `Origin` on cross-origin fetches and form POSTs), and
token guessing. Requests without the right token draw from their own bucket, so a page
that fires hundreds of token-less image requests is refused 429 itself but never uses up
the token holder's allowance (the 43-character token cannot be guessed at any rate).
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

TOKEN_FILE = "api-token"


def ensure_token(home: Path) -> str:
    """The API token in `home/api-token`, created 0600 on first run."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / TOKEN_FILE
    if not path.exists():
        token = secrets.token_urlsafe(32)
        try:
            # O_EXCL: two servers starting at once never overwrite each other's token.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(token + "\n")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, 0o600)  # someone loosened it: the token is a password
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(
            f"The API token file {path} is empty; delete it and restart `memex serve`."
        )
    return token


def allowed_hosts(port: int) -> frozenset[str]:
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"})


def host_ok(host: str | None, port: int) -> bool:
    return host is not None and host.strip().lower() in allowed_hosts(port)


def origin_ok(origin: str | None, allowed: frozenset[str]) -> bool:
    """No Origin header (curl, local apps) is fine; a present one must be allowed explicitly."""
    if origin is None:
        return True
    return origin.strip().rstrip("/").lower() in allowed


def bearer_ok(header: str | None, token: str) -> bool:
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())


def json_content_type(value: str | None) -> bool:
    if not value:
        return False
    return value.split(";", 1)[0].strip().lower() == "application/json"


@dataclass
class RateLimiter:
    """Token bucket: `per_minute` requests, refilled continuously; thread-safe."""

    per_minute: int

    def __post_init__(self) -> None:
        self._tokens = float(self.per_minute)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def allow(self) -> tuple[bool, float]:
        """(allowed, seconds until the next request would be allowed)."""
        with self._lock:
            now = time.monotonic()
            rate = self.per_minute / 60.0
            self._tokens = min(float(self.per_minute), self._tokens + (now - self._stamp) * rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True, 0.0
            return False, (1.0 - self._tokens) / rate


@dataclass
class ClientLimits:
    """One bucket for requests that carry the right token and one for all the others."""

    per_minute: int

    def __post_init__(self) -> None:
        self.authenticated = RateLimiter(self.per_minute)
        self.strangers = RateLimiter(self.per_minute)

    def allow(self, authenticated: bool) -> tuple[bool, float]:
        return (self.authenticated if authenticated else self.strangers).allow()
