"""Servers the tests start as child processes (llama-cpp-python's server, `chroma run`):
a free port, wait until an URL answers, and always stop the process afterwards."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(
    cmd: Sequence[str],
    ready_url: str,
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float = 180.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `cmd` until the block ends; fail the test if `ready_url` never answers. The log goes
    to a file, not a pipe: a chatty server must never block on a full pipe."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"{cmd[0]} exited: {log.read().decode('utf-8', 'replace')[-2000:]}")
                try:
                    with urllib.request.urlopen(
                        urllib.request.Request(ready_url, headers=headers or {}), timeout=5
                    ):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"{' '.join(cmd[:3])} did not answer within {timeout_s:.0f} s")
                    time.sleep(0.3)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
