"""Process memory measurements and allocator choice for the training child."""

from __future__ import annotations

import ctypes.util
import glob
import os
import resource
import sys


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark (VmHWM) so the peak covers training only."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _status_kb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is None:
        ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        kb = ru / 1024 if sys.platform == "darwin" else ru
    return round(kb / 1024, 1)


def rss_mb() -> float:
    kb = _status_kb("VmRSS")
    if kb is None:
        import psutil

        return round(psutil.Process().memory_info().rss / 2**20, 1)
    return round(kb / 1024, 1)


def find_tcmalloc() -> str | None:
    """tcmalloc returns freed blocks to the OS; glibc keeps them on the heap, so with glibc a
    training child's peak RSS stays at its high-water mark and offloading would not show."""
    for name in ("tcmalloc_minimal", "tcmalloc"):
        found = ctypes.util.find_library(name)
        if found:
            for d in (
                "/usr/lib",
                "/usr/lib64",
                "/usr/local/lib",
                *glob.glob("/usr/lib/*-linux-gnu"),
            ):
                path = os.path.join(d, found)
                if os.path.exists(path):
                    return path
    hits = sorted(glob.glob("/usr/lib/*-linux-gnu/libtcmalloc_minimal.so*")) + sorted(
        glob.glob("/usr/lib*/libtcmalloc_minimal.so*")
    )
    return hits[0] if hits else None


def allocator_env(env: dict[str, str]) -> tuple[dict[str, str], str]:
    """Environment for the child: tcmalloc when installed, else a bounded glibc."""
    env = dict(env)
    lib = find_tcmalloc()
    if lib and "LD_PRELOAD" not in env:
        env["LD_PRELOAD"] = lib
        env.setdefault("TCMALLOC_RELEASE_RATE", "10")
        return env, "tcmalloc"
    # Fewer arenas keep freed tensors from being stranded in per-thread heaps.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    return env, "glibc"


def peak_gpu_mb() -> float:
    import torch

    if not torch.cuda.is_available():
        return 0.0
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)
