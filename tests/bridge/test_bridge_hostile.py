"""The bridge under hostile input: deep nesting does not kill the host, and a flood of hellos
cannot push a real pairing request off the approval list."""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from app.bridge.crypto import HostKey
from app.bridge.framing import FrameError, read_frame
from app.bridge.service import BridgeService
from app.bridge.state import MAX_PENDING, PENDING_TTL_S, BridgeState
from tests.bridge.bridge_client import FakeExtension, HostProcess

DEEP = b"[" * 100_000 + b"]" * 100_000


def _frame(body: bytes) -> bytes:
    return struct.pack("=I", len(body)) + body


class _NoMemory:
    """Hellos never read memory."""

    def profile(self) -> dict[str, str]:
        raise AssertionError("not used")

    def draft(self, question: str) -> dict[str, Any]:
        raise AssertionError("not used")


@pytest.fixture
def service(settings) -> Any:
    state = BridgeState(settings.bridge_dir)
    yield BridgeService(
        state=state, host_key=HostKey.load_or_create(settings.bridge_dir), memory=_NoMemory()
    )
    state.close()


def test_deeply_nested_frame_is_a_malformed_error_not_a_crash() -> None:
    stream = io.BytesIO(_frame(DEEP) + _frame(b'{"action":"hello"}'))
    with pytest.raises(FrameError) as info:
        read_frame(stream)
    assert info.value.kind == "malformed" and not info.value.fatal and "nested" in str(info.value)
    assert read_frame(stream) == {"action": "hello"}  # still in sync


def test_host_process_survives_a_deeply_nested_frame(home: Path) -> None:
    host = HostProcess(home)
    try:
        host.send_raw(_frame(DEEP))
        reply = host.read()
        assert (
            reply["action"] == "error"
            and reply["kind"] == "malformed"
            and "\n" not in reply["error"]
        )
        host.send_raw(_frame(b'{"action":"hello","pad":' + b"[" * 50_000 + b"]" * 50_000 + b"}"))
        assert host.read()["kind"] == "malformed"
        assert FakeExtension(host).hello()["action"] == "hello"
        assert host.proc.poll() is None
    finally:
        assert host.close() == 0


def test_hello_flood_cannot_evict_a_real_pairing_request(service: BridgeService) -> None:
    real = FakeExtension(service.handle)
    real.hello()
    flood = [FakeExtension(service.handle) for _ in range(MAX_PENDING + 5)]
    replies = [
        service.handle({"action": "hello", "client_key": f.public, "client_name": "flood"})
        for f in flood
    ]
    refused = [r for r in replies if r["action"] == "error"]
    assert len(refused) == 6 and {r["kind"] for r in refused} == {"pairing_full"}
    assert "\n" not in refused[0]["error"] and "memex bridge pair" in refused[0]["error"]
    codes = [p.code for p in service.state.pending()]
    assert real.code in codes and len(codes) == MAX_PENDING
    # the real browser says hello again (the extension retries) and is still waiting, then approved
    assert real.hello()["paired"] is False
    assert service.state.approve(real.code, "laptop") is not None
    assert real.hello()["paired"] is True


def test_expired_requests_make_room_again(service: BridgeService) -> None:
    for _ in range(MAX_PENDING):
        FakeExtension(service.handle).hello()
    late = FakeExtension(service.handle)
    reply = service.handle({"action": "hello", "client_key": late.public, "client_name": "late"})
    assert reply["kind"] == "pairing_full"
    # everything waiting is now older than the TTL: dropped, and the newcomer fits
    service.state._db.execute(
        "UPDATE pending SET created_at = ?", (time.time() - PENDING_TTL_S - 1,)
    )
    assert service.state.pending() == []
    assert late.hello()["action"] == "hello"
    assert [p.code for p in service.state.pending()] == [late.code]
