"""Expert reads in a helper process, for the CPU fast tier with a disk slow tier.

Why a process: a loader *thread* must take the GIL back after every read, and each hand-off
stalls the compute thread, which drops and retakes the GIL around every torch op. Measured
on a 2-core box: a thread doing ~1,200 O_DIRECT reads/s slowed small expert matmuls by ~30%
(~200 us of compute-thread time per read); the same reads from another process cost ~3%.
Here the fast tier's slots live in shared memory (`FastTier(shared=True)`), the reader
process (readworker.py, standard library only) preads blobs straight into them, and the
compute thread only writes job records to one pipe and reads completions from another.

Readiness: `ProcTicket.ready()` drains the completion pipe without blocking; `wait()` blocks
on it (the GIL is released while blocked). A failed read or checksum is repeated on the
calling thread through the slow tier itself, so errors carry the same message as ever.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from inference.moe.storage.jobs import Job, Ticket
from inference.moe.storage.readworker import DONE, JOB

if TYPE_CHECKING:
    from inference.moe.storage.store import DiskSlowTier, FastTier, SlowTier

_WORKER = Path(__file__).with_name("readworker.py")
_MAX_MESSAGE = 4096 // JOB.size  # records per write: pipe writes up to PIPE_BUF are atomic


class ProcTicket(Ticket):
    __slots__ = ("_job", "_loader")

    def __init__(self, loader: ProcessLoader, job: tuple[int, int, int]) -> None:
        self.done = False
        self.error: BaseException | None = None
        self.cuda_event: Any = None
        self._loader = loader
        self._job = job  # (blob index, slot, variant): to repeat a failed read here

    def ready(self) -> bool:
        if not self.done:
            self._loader.drain(block=False)
        return self.done

    def wait(self) -> float:
        stall = 0.0
        if not self.done:
            t0 = time.perf_counter()
            while not self.done:
                self._loader.drain(block=True)
            stall = time.perf_counter() - t0
        if self.error is not None:
            raise self.error
        return stall

    def _finish(self, error: BaseException | None = None) -> None:
        self.error = error
        self.done = True


class ProcessLoader:
    """The `Loader` protocol served by a reader process (see module doc)."""

    def __init__(self, slows: Sequence[SlowTier], fast: FastTier) -> None:
        self.slows = [cast("DiskSlowTier", s) for s in slows]  # usable() checked the kind
        self.fast = fast
        pool_fd = fast.shared_fd
        if pool_fd is None:
            raise ValueError("ProcessLoader needs a shared fast tier (FastTier(shared=True))")
        self._tickets: dict[int, ProcTicket] = {}
        self._next_id = 0
        self._buf = b""
        jobs_r, self._jobs_w = os.pipe()
        self._done_r, done_w = os.pipe()
        os.set_blocking(self._done_r, False)
        spec = {
            "pool_fd": pool_fd,
            "pool_bytes": fast.shared_bytes,
            "slot_bytes": fast.layout.blob_bytes,
            "jobs_fd": jobs_r,
            "done_fd": done_w,
            "tiers": [
                {
                    "path": str(s.path),
                    "offset": s.offset,
                    "blob_bytes": s.layout.blob_bytes,
                    "nbytes": s.layout.nbytes,
                    "direct": s.direct,
                }
                for s in self.slows
            ],
        }
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(_WORKER), json.dumps(spec)],
                pass_fds=(pool_fd, jobs_r, done_w),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(jobs_r)
            os.close(done_w)
        # a model dropped without close() still stops its reader
        self._shutdown = weakref.finalize(self, _shutdown, self._jobs_w, self._done_r, self._proc)

    @staticmethod
    def usable(slows: Sequence[SlowTier], fast: FastTier) -> bool:
        """A shared pool, disk slow tiers and a Python interpreter to run the reader with
        (a frozen app's executable is not one)."""
        if getattr(sys, "frozen", False) or not sys.executable:
            return False
        return getattr(fast, "shared_fd", None) is not None and all(
            hasattr(s, "offset") and hasattr(s, "direct") for s in slows
        )

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the reader process has used so far."""
        import psutil

        try:
            t = psutil.Process(self._proc.pid).cpu_times()
        except psutil.Error:  # already exited
            return 0.0
        return float(t.user + t.system)

    # -- the Loader protocol -----------------------------------------------------------
    def submit(
        self, index: int, slot: int, priority: int, after: Any = None, variant: int = 0
    ) -> Ticket:
        return self.submit_many([(index, slot, after, variant)], priority)[0]

    def submit_many(self, jobs: Sequence[Job], priority: int) -> list[Ticket]:
        tickets: list[Ticket] = []
        records = []
        for index, slot, _, variant in jobs:
            job = self._next_id
            self._next_id += 1
            slow = self.slows[variant]
            crc = -1 if slow._verified[index] else slow._crcs[index]
            ticket = ProcTicket(self, (index, slot, variant))
            self._tickets[job] = ticket
            tickets.append(ticket)
            records.append(JOB.pack(job, priority, index, slot, variant, crc))
        for start in range(0, len(records), _MAX_MESSAGE):
            self._write(b"".join(records[start : start + _MAX_MESSAGE]))
        return tickets

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._jobs_w, view)
            view = view[n:]

    def drain(self, block: bool) -> None:
        """Mark finished jobs done; with `block`, wait until at least one more finishes."""
        if block:
            while True:
                ready, _, _ = select.select([self._done_r], [], [], 1.0)
                if ready:
                    break
                if self._proc.poll() is not None:
                    raise RuntimeError("the MoE expert reader process exited unexpectedly")
        try:
            data = os.read(self._done_r, 65536)
        except BlockingIOError:
            return
        buf = self._buf + data
        usable = len(buf) - len(buf) % DONE.size
        for job, status in DONE.iter_unpack(buf[:usable]):
            ticket = self._tickets.pop(job, None)
            if ticket is None:
                continue
            index, slot, variant = ticket._job
            slow = self.slows[variant]
            if status:
                # repeat here: raises CorruptExpertFile/OSError with the slow tier's message
                try:
                    slow.read_into(index, self.fast.raw(slot))
                except BaseException as exc:  # noqa: BLE001 - handed to compute via the ticket
                    ticket._finish(exc)
                    continue
            slow._verified[index] = 1
            ticket._finish()
        self._buf = buf[usable:]

    def close(self) -> None:
        self._shutdown()


def _shutdown(jobs_w: int, done_r: int, proc: subprocess.Popen) -> None:
    os.close(jobs_w)  # EOF: the reader finishes queued jobs and exits
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a hung disk
        proc.kill()
        proc.wait()
    os.close(done_r)
