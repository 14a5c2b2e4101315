"""The expert reader process behind `procloader.ProcessLoader` (standard library only).

Run by path (`python -I -S readworker.py SPEC`), never imported by the engine: it must start
in milliseconds and hold no GIL the compute thread could want. It maps the fast tier's
shared memory, reads expert blobs from the slow-tier files straight into their slots and
reports each finished job on a pipe.

SPEC (JSON): {"pool_fd", "pool_bytes", "slot_bytes", "jobs_fd", "done_fd",
              "tiers": [{"path", "offset", "blob_bytes", "nbytes", "direct"}, ...]}
Jobs pipe: messages of `JOB` records (id, priority, blob index, slot, variant, crc32 or -1);
a lower priority is read first (demand loads jump ahead of prefetches). Done pipe: `DONE`
records (id, status): 0 read, 1 read failed or checksum mismatch (the caller repeats the read
itself to raise the error with its full message).
"""

from __future__ import annotations

import heapq
import json
import mmap
import os
import struct
import sys
import zlib

JOB = struct.Struct("<qiiiiq")  # id, priority, index, slot, variant, crc32 (-1: trusted)
DONE = struct.Struct("<qi")  # id, status


def _open(tier: dict) -> tuple[int, bool]:
    if tier["direct"] and hasattr(os, "O_DIRECT"):
        try:
            return os.open(tier["path"], os.O_RDONLY | os.O_DIRECT), True
        except OSError:
            pass
    return os.open(tier["path"], os.O_RDONLY), False


def main(spec: dict) -> None:
    pool = mmap.mmap(spec["pool_fd"], spec["pool_bytes"])
    view = memoryview(pool)
    tiers = spec["tiers"]
    fds = [_open(t) for t in tiers]
    jobs_fd, done_fd = spec["jobs_fd"], spec["done_fd"]
    heap: list[tuple[int, int, int, int, int, int]] = []
    pending = b""
    eof = False
    while True:
        # block for work only when none is queued; otherwise just pick up what arrived
        os.set_blocking(jobs_fd, not heap)
        try:
            data = os.read(jobs_fd, 65536)
            if not data:
                eof = True
        except BlockingIOError:
            data = b""
        pending += data
        usable = len(pending) - len(pending) % JOB.size
        for rec in JOB.iter_unpack(pending[:usable]):
            job, prio = rec[0], rec[1]
            heapq.heappush(heap, (prio, job, rec[2], rec[3], rec[4], rec[5]))
        pending = pending[usable:]
        if not heap:
            if eof:
                return
            continue
        _, job, index, slot, variant, crc = heapq.heappop(heap)
        status = _read(tiers[variant], fds, variant, view, spec["slot_bytes"], index, slot, crc)
        os.write(done_fd, DONE.pack(job, status))


def _read(
    tier: dict,
    fds: list,
    variant: int,
    view: memoryview,
    slot_bytes: int,
    index: int,
    slot: int,
    crc: int,
) -> int:
    blob = tier["blob_bytes"]
    start = slot * slot_bytes  # slots are sized for the largest stored form (variant 0)
    dst = view[start : start + blob]
    offset = tier["offset"] + index * blob
    fd, direct = fds[variant]
    try:
        try:
            n = os.preadv(fd, [dst], offset)
        except OSError:
            if not direct:
                raise
            # some filesystems accept O_DIRECT at open but not at read: fall back for good
            os.close(fd)
            fd, direct = os.open(tier["path"], os.O_RDONLY), False
            fds[variant] = (fd, direct)
            n = os.preadv(fd, [dst], offset)
        if not direct:
            os.posix_fadvise(fd, offset, blob, os.POSIX_FADV_DONTNEED)
    except OSError:
        return 1
    if n != blob:
        return 1
    if crc >= 0 and zlib.crc32(dst[: tier["nbytes"]]) != crc:
        return 1
    return 0


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
