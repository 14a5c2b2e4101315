"""What a loader is handed and hands back: job records, tickets, priorities, the protocol.

Its own module so every loader (loader.py's thread and CUDA loaders, procloader.py's reader
process) and the expert cache share these types without importing one another.
"""

from __future__ import annotations

import _thread
import time
from collections.abc import Sequence
from typing import Any, Protocol

DEMAND = 0
PREFETCH = 1


class Ticket:
    """Readiness of one load; `wait()` returns the seconds compute stalled on it.

    A plain flag plus one raw lock held until the load finishes: creating and checking a
    ticket happens on the compute thread for every load, and `threading.Event` (a Condition
    and two locks) costs several times more per expert.
    """

    __slots__ = ("_lock", "cuda_event", "done", "error")

    def __init__(self) -> None:
        self.done = False
        self.error: BaseException | None = None
        self.cuda_event: Any = None
        self._lock = _thread.allocate_lock()
        self._lock.acquire()  # released by _finish; waiters block on it

    def ready(self) -> bool:
        if self.cuda_event is not None:
            return bool(self.cuda_event.query())
        return self.done

    def wait(self) -> float:
        if self.cuda_event is not None:
            import torch

            stall = 0.0
            if not self.cuda_event.query():
                t0 = time.perf_counter()
                self.cuda_event.synchronize()
                stall = time.perf_counter() - t0
            # later kernels on the compute stream must see the finished copy
            torch.cuda.current_stream().wait_event(self.cuda_event)
            return stall
        if self.done:
            stall = 0.0
        else:
            t0 = time.perf_counter()
            self._lock.acquire()  # free once the loader finished; hand it on to other waiters
            self._lock.release()
            stall = time.perf_counter() - t0
        if self.error is not None:
            raise self.error
        return stall

    def _finish(self, error: BaseException | None = None) -> None:
        self.error = error
        self.done = True
        self._lock.release()


Job = tuple[int, int, Any, int]  # (blob index, slot, event the slot's last use recorded, variant)


class Loader(Protocol):
    def submit(
        self, index: int, slot: int, priority: int, after: Any = None, variant: int = 0
    ) -> Ticket: ...

    def submit_many(self, jobs: Sequence[Job], priority: int) -> list[Ticket]: ...

    def close(self) -> None: ...
