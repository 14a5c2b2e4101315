"""The native-messaging host process (`memex bridge host`), started by the browser.

One long-lived process per browser (the extension keeps one `connectNative` port open), so
keys, state and the store are opened once. stdout carries frames only: anything else a
library prints is redirected to stderr, which the browser logs.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, BinaryIO

from app.bridge.access import AutoAccess
from app.bridge.agent import AppConfirmer
from app.bridge.crypto import HostKey
from app.bridge.framing import FrameError, read_frame, write_frame
from app.bridge.service import BridgeService, MemoryAccess
from app.bridge.state import open_state
from app.errors import MemexError
from app.service.access import ServiceAccess

if TYPE_CHECKING:
    from app.settings import Settings

log = logging.getLogger(__name__)


def build_service(settings: Settings, memory: MemoryAccess | None = None) -> BridgeService:
    settings.ensure_home()
    state = open_state(settings)  # keyed when the vault is on; MemexError "locked" otherwise
    # the resident service (one writer, warm model) when it runs; else the app or the store
    memory = memory or ServiceAccess(settings.home, AutoAccess(settings))
    return BridgeService(
        state=state,
        host_key=HostKey.load_or_create(settings.bridge_dir),
        memory=memory,
        desktop=AppConfirmer(settings),
    )


def serve(service: BridgeService, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Answer frames until the browser closes the port; returns the exit status."""
    while True:
        try:
            message = read_frame(stdin)
        except FrameError as exc:
            write_frame(
                stdout, {"action": "error", "id": None, "error": str(exc), "kind": exc.kind}
            )
            if exc.fatal:
                return 1
            continue
        if message is None:
            return 0
        try:
            reply: dict[str, Any] = service.handle(message)
        except Exception:  # a bug must not kill the port the browser keeps open
            log.exception("bridge request failed")
            reply = {
                "action": "error",
                "id": message.get("id"),
                "error": "Internal error in memex.",
                "kind": "internal",
            }
        try:
            write_frame(stdout, reply)
        except FrameError as exc:
            write_frame(
                stdout,
                {"action": "error", "id": message.get("id"), "error": str(exc), "kind": exc.kind},
            )


def serve_locked(settings: Settings, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """The vault was locked when the browser started us: answer each frame with that error,
    trying again to open the (encrypted) bridge state first, and serve once it opens."""
    while True:
        try:
            message = read_frame(stdin)
        except FrameError as err:
            if err.fatal:
                return 1
            continue
        if message is None:
            return 0
        try:
            service = build_service(settings)
        except MemexError as exc:
            write_frame(
                stdout,
                {"action": "error", "id": message.get("id"), "error": str(exc), "kind": exc.kind},
            )
            continue
        try:
            try:
                write_frame(stdout, service.handle(message))
            except Exception:  # as in `serve`: a bug must not kill the port
                log.exception("bridge request failed")
                write_frame(
                    stdout,
                    {
                        "action": "error",
                        "id": message.get("id"),
                        "error": "Internal error in memex.",
                        "kind": "internal",
                    },
                )
            return serve(service, stdin, stdout)
        finally:
            _close(service)


def _close(service: BridgeService) -> None:
    close = getattr(service.memory, "close", None)
    if callable(close):
        close()
    service.state.close()


def run_host(settings: Settings) -> int:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="memex-bridge %(levelname)s %(message)s"
    )
    stdout = sys.stdout.buffer
    sys.stdout = sys.stderr  # keep stray prints out of the frame stream
    try:
        service = build_service(settings)
    except MemexError:  # locked vault: the bridge state itself is encrypted
        return serve_locked(settings, sys.stdin.buffer, stdout)
    try:
        return serve(service, sys.stdin.buffer, stdout)
    finally:
        _close(service)
