"""What every benchmark shares: the JSON layout, percentiles, ratio naming, the machine, `--json`.

A benchmark prints one JSON object:

    {"name": "memory",                  # the benchmark (its file name)
     "machine": {...},                  # machine(): cores, RAM, CPU model, OS, Python
     "results": {...},                  # the raw figures, free-form per benchmark
     "ratios": {"ingest_vs_raw_embed": 0.91, ...},
     "targets": {"ingest_vs_raw_embed": {"value": 0.91, "target": ">= 0.8", "met": true}, ...}}

Ratios compare a variant with a baseline measured in the same run, named
`<variant>_vs_<baseline>` and always computed as variant / baseline of the figure the benchmark
reports (a speed: above 1 is faster; a latency, a block or a memory peak: below 1 is smaller).
Never the other way round, so a reader never has to ask which side is on top. A benchmark with
several figures groups its ratios by figure: {"peak_rss": {"disk_vs_none": 0.3}, ...}; a
target then names it "peak_rss.disk_vs_none".

Scripts import this after putting the repository root first on sys.path (run as a script,
benchmarks/ itself comes first and its memory.py would shadow the `memory` package):

    ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
    sys.path.insert(0, str(ROOT))
    from benchmarks._common import emit, parser, percentile
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}


def parser(doc: str | None, **kwargs: Any) -> argparse.ArgumentParser:
    """An ArgumentParser described by the docstring's first line, with `--json` already added."""
    ap = argparse.ArgumentParser(
        description=(doc or "").strip().splitlines()[0] if doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    ap.add_argument(
        "--json", action="store_true", help="print the JSON object on one line (default: indented)"
    )
    return ap


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank on the sorted values; no interpolation, so
    the figure is always a latency that was measured."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[k]


def p50_p95(values: Sequence[float], digits: int = 2) -> dict[str, float]:
    """{"p50", "p95"} of the values, rounded: the summary every latency in a benchmark gets."""
    return {
        "p50": round(percentile(values, 50), digits),
        "p95": round(percentile(values, 95), digits),
    }


def ratio_name(variant: str, baseline: str) -> str:
    return f"{variant}_vs_{baseline}"


def ratio(variant: float | None, baseline: float | None, digits: int = 3) -> float | None:
    """variant / baseline, rounded; None when either side is missing or the baseline is 0."""
    if variant is None or not baseline:
        return None
    return round(variant / baseline, digits)


def target(value: float | None, op: str, threshold: float) -> dict[str, Any]:
    """One entry of "targets": the figure, the goal as text ("<= 50") and whether it is met."""
    met = value is not None and _OPS[op](value, threshold)
    return {"value": value, "target": f"{op} {threshold:g}", "met": bool(met)}


def machine(**extra: Any) -> dict[str, Any]:
    """Cores, RAM, CPU model, OS and Python of this machine (read from /proc where there is
    one; nothing heavy imported); `extra` adds e.g. the GPU a benchmark ran on."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    info.update(extra)
    return info


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report(
    name: str,
    results: Mapping[str, Any],
    ratios: Mapping[str, Any] | None = None,
    targets: Mapping[str, Any] | None = None,
    machine_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The one layout, as a dict (tests and other benchmarks can read it without printing)."""
    return {
        "name": name,
        "machine": dict(machine_info) if machine_info is not None else machine(),
        "results": dict(results),
        "ratios": dict(ratios or {}),
        "targets": dict(targets or {}),
    }


def emit(
    name: str,
    results: Mapping[str, Any],
    ratios: Mapping[str, Any] | None = None,
    targets: Mapping[str, Any] | None = None,
    *,
    as_json: bool = True,
    machine_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Print the benchmark's one JSON object on stdout (one line with --json, else indented)
    and return it. Progress and logs belong on stderr, so stdout stays parseable."""
    out = report(name, results, ratios, targets, machine_info)
    print(json.dumps(out) if as_json else json.dumps(out, indent=2), file=sys.stdout, flush=True)
    return out
