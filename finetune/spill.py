"""Saved activations spilled to a preallocated ring file and read back for backward.

The file is allocated once (so a full disk shows up before training, not mid-step) and
reused every step. Writes go through pwrite/preadv rather than a shared mapping: dirty
mapped pages would count in our resident set, page-cache pages do not. Parameters are
never spilled, and a tensor saved several times (q, k and v share their input) is written
once.
"""

from __future__ import annotations

import errno
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.errors import DiskFullError

MIN_SPILL_BYTES = 64 * 1024  # small tensors cost more in syscalls than they save


@dataclass(frozen=True)
class Spilled:
    offset: int
    nbytes: int
    shape: tuple[int, ...]
    dtype: Any
    index: int


class SpillRing:
    def __init__(self, path: str | Path, capacity: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.capacity = 0
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._handles: list[Spilled] = []
        self.offset = 0
        self.bytes_written = 0
        self._reserve(max(capacity, 1 << 20))

    def _reserve(self, capacity: int) -> None:
        try:
            os.posix_fallocate(self.fd, 0, capacity)
        except OSError as exc:
            raise self._disk_full(exc) from exc
        self.capacity = capacity

    def _disk_full(self, exc: OSError) -> Exception:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return DiskFullError(
                f"The disk holding {self.path.parent} is full while spilling activations; "
                "free some space or train with --offload none or cpu."
            )
        return exc

    def reset(self) -> None:
        """Start a new step: everything from the previous backward is dead."""
        self.offset = 0
        self._handles.clear()

    def write(self, t: Any) -> Spilled:
        import torch

        t = t.detach()
        if not t.is_contiguous():
            t = t.contiguous()
        nbytes = t.numel() * t.element_size()
        if self.offset + nbytes > self.capacity:
            self._reserve(max(self.offset + nbytes, int(self.capacity * 1.5)))
        raw: Any = t.view(torch.uint8).reshape(-1).numpy() if nbytes else b""
        try:
            done = os.pwrite(self.fd, memoryview(raw), self.offset) if nbytes else 0
        except OSError as exc:
            raise self._disk_full(exc) from exc
        if done != nbytes:
            raise DiskFullError(
                f"Short write while spilling activations to {self.path}; the disk may be full."
            )
        h = Spilled(self.offset, nbytes, tuple(t.shape), t.dtype, len(self._handles))
        self._handles.append(h)
        self.offset += (nbytes + 4095) // 4096 * 4096  # page-aligned slots
        self.bytes_written += nbytes
        return h

    def read(self, h: Spilled) -> Any:
        import torch

        out = torch.empty(h.shape, dtype=h.dtype)
        if h.nbytes:
            buf: Any = out.view(torch.uint8).reshape(-1).numpy()
            if os.preadv(self.fd, [memoryview(buf)], h.offset) != h.nbytes:
                raise OSError(f"short read from the spill file {self.path}")
        if h.index > 0 and hasattr(os, "posix_fadvise"):
            # backward walks the layers in reverse: ask for the previous slot now
            prev = self._handles[h.index - 1] if h.index - 1 < len(self._handles) else None
            if prev is not None:
                os.posix_fadvise(self.fd, prev.offset, prev.nbytes, os.POSIX_FADV_WILLNEED)
        return out

    @contextmanager
    def hooks(self, params: Any) -> Iterator[None]:
        """saved_tensors_hooks that spill big non-parameter tensors, once each."""
        import torch

        param_ptrs = {p.untyped_storage().data_ptr() for p in params}
        # key -> (weak ref to the saved tensor, its slot); the weak ref guards against a
        # freed tensor's address being reused by a different one with the same shape
        seen: dict[tuple[Any, ...], tuple[Any, Spilled]] = {}

        def pack(t: Any) -> Any:
            if t.device.type != "cpu" or t.numel() * t.element_size() < MIN_SPILL_BYTES:
                return t
            ptr = t.untyped_storage().data_ptr()
            if ptr in param_ptrs:
                return t
            key = (ptr, t.storage_offset(), tuple(t.shape), tuple(t.stride()), t._version, t.dtype)
            hit = seen.get(key)
            if hit is not None and hit[0]() is t:
                return hit[1]
            h = self.write(t)
            try:
                seen[key] = (weakref.ref(t), h)
            except TypeError:
                pass
            return h

        def unpack(x: Any) -> Any:
            return self.read(x) if isinstance(x, Spilled) else x

        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            yield

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        try:
            self.path.unlink()
        except OSError:
            pass
