"""ruff and mypy as configured in pyproject.toml, run by the suite like the import contracts.

mypy checks app/ (the GUI included), memory, inference and finetune; ruff checks those, the
benchmarks and the tests, with the 100-column line limit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["app", "memory", "inference", "finetune", "benchmarks", "tests"]


def _tool(name: str) -> Path:
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        pytest.skip(f"{name} is not installed (pip install 'memex[dev]')")
    return path


def test_ruff_finds_nothing() -> None:
    res = subprocess.run(
        [str(_tool("ruff")), "check", "--output-format", "concise", *CHECKED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def test_mypy_finds_nothing() -> None:
    # the files and the GUI exception come from [tool.mypy]
    res = subprocess.run(
        [str(_tool("mypy"))], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
