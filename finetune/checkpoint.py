"""Atomic training checkpoints: written to a temp folder, then renamed into place.

A kill -9 at any moment leaves either the previous checkpoint or the new one, never half of
one. `checkpoint.old` exists only between the two renames and is used if the new one is
missing.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CKPT = "checkpoint"


@dataclass
class TrainState:
    step: int = 0
    losses: list[float] = field(default_factory=list)
    tokens: int = 0
    fingerprint: str = ""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(work_dir: Path, state: TrainState, lora: dict[str, Any], optim: dict[str, Any]) -> None:
    import torch

    final, old = work_dir / CKPT, work_dir / (CKPT + ".old")
    tmp = work_dir / f"{CKPT}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(lora, tmp / "lora.pt")
    torch.save(optim, tmp / "optim.pt")
    (tmp / "state.json").write_text(json.dumps(state.__dict__))
    for name in ("lora.pt", "optim.pt", "state.json"):
        with open(tmp / name, "rb+") as fh:
            os.fsync(fh.fileno())
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync_dir(work_dir)
    shutil.rmtree(old, ignore_errors=True)


def load(
    work_dir: Path, fingerprint: str
) -> tuple[TrainState, dict[str, Any], dict[str, Any]] | None:
    """The last complete checkpoint of this same run, or None to start fresh."""
    import torch

    for p in work_dir.glob(f"{CKPT}.tmp*"):
        shutil.rmtree(p, ignore_errors=True)  # a write that was killed midway
    for cand in (work_dir / CKPT, work_dir / (CKPT + ".old")):
        if not (cand / "state.json").exists():
            continue
        try:
            state = TrainState(**json.loads((cand / "state.json").read_text()))
            if state.fingerprint != fingerprint:
                return None
            lora = torch.load(cand / "lora.pt", weights_only=True)
            optim = torch.load(cand / "optim.pt", weights_only=True)
        except (OSError, ValueError, RuntimeError, TypeError):
            continue
        return state, lora, optim
    return None


def clear(work_dir: Path) -> None:
    for name in (CKPT, CKPT + ".old"):
        shutil.rmtree(work_dir / name, ignore_errors=True)
