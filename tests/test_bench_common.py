"""benchmarks/_common.py: the one JSON layout, percentiles and ratio naming every benchmark uses."""

from __future__ import annotations

import json

import pytest

from benchmarks._common import emit, machine, p50_p95, parser, percentile, ratio, ratio_name, target


def test_percentile_is_a_measured_value() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 5.0
    assert percentile(values, 95) in values
    assert p50_p95(values) == {"p50": 3.0, "p95": 5.0}
    with pytest.raises(ValueError):
        percentile([], 50)


def test_ratios_are_variant_over_baseline() -> None:
    assert ratio_name("disk", "none") == "disk_vs_none"
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(1.0, 0.0) is None and ratio(None, 2.0) is None
    assert target(0.9, ">=", 0.8) == {"value": 0.9, "target": ">= 0.8", "met": True}
    assert target(None, "<=", 50)["met"] is False


def test_emit_prints_the_layout(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser("A benchmark.\n\nMore.").parse_args(["--json"])
    emit("demo", {"n": 3}, {"a_vs_b": 1.0}, {"a_vs_b": target(1.0, ">=", 0.9)}, as_json=args.json)
    line = capsys.readouterr().out
    assert line.count("\n") == 1
    out = json.loads(line)
    assert list(out) == ["name", "machine", "results", "ratios", "targets"]
    assert out["name"] == "demo" and out["results"] == {"n": 3}
    assert {"cores", "ram_gb", "cpu"} <= set(machine())
