"""Moving experts from the slow tier into fast-tier slots without blocking compute.

CPU: by default a reader *process* fills a shared fast tier (procloader.py: a thread must
retake the GIL after every read, which stalls the compute thread between its torch ops);
`ThreadLoader`, one loader thread (`os.preadv` and `Tensor.copy_` release the GIL, so reads
overlap the matmuls), serves memory slow tiers and platforms without memfd. GPU: copies are
queued on a dedicated CUDA stream and each load records an event; compute waits only on the
event of the expert it needs. Demand loads jump ahead of prefetches in the queue. A loader may
read from several slow tiers (`variant` picks one): the `int4_int2` quant scheme keeps every
expert both as INT4 and INT2. The job records, tickets and priorities all loaders share live
in jobs.py.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from inference.moe.storage.jobs import Job, Loader, Ticket
from inference.moe.storage.procloader import ProcessLoader

if TYPE_CHECKING:
    import torch

    from inference.moe.storage.store import FastTier, SlowTier


class ThreadLoader:
    """A single background thread serving a priority queue of (blob index -> slot) reads."""

    def __init__(self, slows: SlowTier | Sequence[SlowTier], fast: FastTier) -> None:
        self.slows = _as_list(slows)
        self.fast = fast
        self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._seq = itertools.count()
        # Python work on this thread holds the GIL the compute thread needs between its ops:
        # keep it per read to one call (no tensor slicing/conversion per expert)
        self._readers = [
            getattr(s, "read_buffer", None) if fast.device == "cpu" else None for s in self.slows
        ]
        self._buffers: dict[int, memoryview] = {}
        self._thread = threading.Thread(target=self._run, name="moe-loader", daemon=True)
        self._thread.start()

    def submit(
        self, index: int, slot: int, priority: int, after: Any = None, variant: int = 0
    ) -> Ticket:
        return self.submit_many([(index, slot, after, variant)], priority)[0]

    def submit_many(self, jobs: Sequence[Job], priority: int) -> list[Ticket]:
        """Queue several reads as one item: one wake-up of the loader thread, not one per
        expert (thread hand-offs dominate the cost of a prefetch on a busy CPU)."""
        tickets = [Ticket() for _ in jobs]
        batch = [(index, slot, t, variant) for (index, slot, _, variant), t in zip(jobs, tickets)]
        if batch:
            self._queue.put((priority, next(self._seq), batch))
        return tickets

    def _run(self) -> None:
        while True:
            priority, seq, batch = self._queue.get()
            if batch is None:
                return
            for n, (index, slot, ticket, variant) in enumerate(batch):
                if n and self._preempted(priority):
                    # a demand load arrived: it goes first, the rest of this batch after it
                    self._queue.put((priority, seq, batch[n:]))
                    break
                try:
                    read = self._readers[variant]
                    if read is not None:  # straight into the slot's cached buffer
                        read(index, self._buffer(slot))
                    else:
                        self.slows[variant].read_into(index, self.fast.raw(slot))
                except BaseException as exc:  # handed to the compute thread through the ticket
                    ticket._finish(exc)
                else:
                    ticket._finish()

    def _buffer(self, slot: int) -> memoryview:
        buf = self._buffers.get(slot)
        if buf is None:
            buf = self._buffers[slot] = self.fast.raw(slot).numpy().data
        return buf

    def _preempted(self, priority: int) -> bool:
        with self._queue.mutex:
            head = self._queue.queue[0] if self._queue.queue else None
        return head is not None and head[0] < priority

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put((-1, -1, None))
            self._thread.join(timeout=10)


class CudaLoader:
    """Host-to-device copies from pinned memory on a side stream, one event per load."""

    def __init__(self, slows: SlowTier | Sequence[SlowTier], fast: FastTier) -> None:
        import torch

        self.slows = _as_list(slows)
        self.fast = fast
        self.stream = torch.cuda.Stream(device=fast.device)

    def submit_many(self, jobs: Sequence[Job], priority: int) -> list[Ticket]:
        return [self.submit(i, s, priority, after, v) for i, s, after, v in jobs]

    def submit(
        self, index: int, slot: int, priority: int, after: Any = None, variant: int = 0
    ) -> Ticket:
        import torch

        ticket = Ticket()
        with torch.cuda.stream(self.stream):
            if after is not None:
                # the slot's previous expert may still be read by queued compute kernels
                self.stream.wait_event(after)
            self.slows[variant].read_into(index, self.fast.raw(slot))
            event = torch.cuda.Event()
            event.record(self.stream)
        ticket.cuda_event = event
        ticket._finish()
        return ticket

    def close(self) -> None:
        self.stream.synchronize()


LOADERS = ("auto", "process", "thread")


def make_loader(slow: SlowTier | Sequence[SlowTier], fast: FastTier, kind: str = "auto") -> Loader:
    """A loader for `fast`; `slow` is one slow tier or one per variant (variant 0 first).

    CPU: `process` (auto where usable: a shared fast tier and disk slow tiers) keeps reads
    off the GIL the compute thread needs (procloader.py); `thread` is the fallback.
    """
    if fast.device != "cpu":
        return CudaLoader(slow, fast)
    if kind != "thread":
        slows = _as_list(slow)
        if ProcessLoader.usable(slows, fast):
            try:
                return ProcessLoader(slows, fast)
            except OSError:  # cannot start a process here: the thread still works
                pass
    return ThreadLoader(slow, fast)


def _as_list(slow: SlowTier | Sequence[SlowTier]) -> list[SlowTier]:
    return list(slow) if isinstance(slow, (list, tuple)) else [slow]  # type: ignore[list-item]


def record_use(device: str) -> torch.cuda.Event | None:
    """An event marking the end of the queued compute that reads a slot (GPU only)."""
    if device == "cpu":
        return None
    import torch

    event = torch.cuda.Event()
    event.record()
    return event
