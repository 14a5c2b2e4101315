"""Stopping training: SIGTERM checkpoints and exits within seconds even mid-step, the parent
takes its child down with it, an orphaned child stops itself, and a default run is bounded
by time and says its estimate before the long part starts.

Bounds are waits with a timeout (generous for a busy machine), never timed assertions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finetune.trainer import train
from finetune.types import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
EXIT_CANCELLED = 3
WAIT_S = 60  # "within a few seconds" on an idle machine; this only catches "never"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# The child with one step made slow: (a) interruptible Python work, as most of a real step is
# between torch ops; (b) stuck with SIGTERM blocked in the main thread, like a long native call.
SLOW_CHILD = """
import signal, sys, time
import finetune.trainer as t
real = t._forward_backward
def slow(cfg, policy, causal, opt, encoded, step, total, pad_id):
    out = real(cfg, policy, causal, opt, encoded, step, total, pad_id)
    if step >= 1:
        print('{"phase": "slow", "step": %d}' % step, file=sys.__stdout__, flush=True)
        if sys.argv[2] == "stuck":
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        time.sleep(600)
    return out
t._forward_backward = slow
from finetune.child import main
sys.exit(main([sys.argv[1]]))
"""

PARENT = """
import json, sys
from finetune.runner import run_training
from finetune.types import TrainConfig
told = []
def on_event(e):
    if e.get("phase") == "train" and not told:
        told.append(1)
        print(json.dumps({"child": int(open(sys.argv[2]).read())}), flush=True)
import finetune.runner as r
start = r.TrainingJob.start
def start_and_tell(self):
    out = start(self)
    open(sys.argv[2], "w").write(str(self.pid))
    return out
r.TrainingJob.start = start_and_tell
run_training(TrainConfig.from_json(json.loads(sys.argv[1])), on_event)
"""


def _cfg(tiny, dataset: Path, cache: Path, work: Path, **kw) -> TrainConfig:
    base = dict(
        base_model=str(tiny.hf_dir),
        dataset=str(dataset),
        work_dir=str(work),
        cache_dir=str(cache),
        steps=6,
        batch=2,
        seq_len=128,
        checkpoint_every=100,
        threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # exited but not reaped yet (an orphan waits for init)
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False


def _wait_gone(pid: int, timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.2)
    return _gone(pid)


def _slow_child(cfg: TrainConfig, mode: str) -> tuple[subprocess.Popen[str], list[dict]]:
    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    (work / "cfg.json").write_text(json.dumps(cfg.to_json()))
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CHILD, str(work / "cfg.json"), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    events: list[dict] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["phase"] == "slow":
            break
    return proc, events


def _finish(proc: subprocess.Popen[str], events: list[dict]) -> int:
    try:
        code = proc.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"the training child did not exit within {WAIT_S} s of SIGTERM")
    assert proc.stdout is not None
    events.extend(json.loads(line) for line in proc.stdout.read().splitlines() if line.strip())
    proc.stdout.close()
    return code


def test_sigterm_mid_step_checkpoints_the_last_full_step(
    tiny, tiny_dataset, base_cache, tmp_path
) -> None:
    cfg = _cfg(tiny, tiny_dataset, base_cache, tmp_path / "run")
    proc, events = _slow_child(cfg, "slow")
    assert [e["step"] for e in events if e["phase"] == "train"] == [1]
    proc.send_signal(signal.SIGTERM)  # in the middle of step 2
    assert _finish(proc, events) == EXIT_CANCELLED
    last = events[-1]
    assert last["phase"] == "cancelled" and last["step"] == 1 and "resume" in last["error"]
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 1  # resumable from there (test_training covers the resume itself)


def test_sigterm_while_stuck_in_native_code_still_exits(
    tiny, tiny_dataset, base_cache, tmp_path
) -> None:
    cfg = _cfg(tiny, tiny_dataset, base_cache, tmp_path / "run")
    proc, events = _slow_child(cfg, "stuck")
    proc.send_signal(signal.SIGTERM)
    assert _finish(proc, events) == EXIT_CANCELLED
    assert events[-1]["phase"] == "cancelled" and "resume" in events[-1]["error"]


def _parent(cfg: TrainConfig, tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    pid_file = tmp_path / "child.pid"
    proc = subprocess.Popen(
        [sys.executable, "-c", PARENT, json.dumps(cfg.to_json()), str(pid_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, "the parent ended before training started"
    return proc, int(json.loads(line)["child"])


def test_sigterm_to_the_parent_stops_the_child(tiny, tiny_dataset, base_cache, tmp_path) -> None:
    cfg = _cfg(tiny, tiny_dataset, base_cache, tmp_path / "run", steps=100_000)
    parent, child = _parent(cfg, tmp_path)
    try:
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=WAIT_S + 10)
        assert _gone(child), "the training child outlived its parent"  # the parent waited for it
        state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
        assert state["step"] >= 1
    finally:
        if not _gone(child):
            os.kill(child, signal.SIGKILL)
        parent.kill()
        parent.wait()
        parent.stdout.close()  # type: ignore[union-attr]


def test_child_of_a_killed_parent_stops_itself(tiny, tiny_dataset, base_cache, tmp_path) -> None:
    cfg = _cfg(tiny, tiny_dataset, base_cache, tmp_path / "run", steps=100_000)
    parent, child = _parent(cfg, tmp_path)
    try:
        parent.kill()  # kill -9: no chance to stop the child
        parent.wait()
        assert _wait_gone(child), "an orphaned training child kept running"
        state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
        assert state["step"] >= 1  # it checkpointed on the way out
    finally:
        if not _gone(child):
            os.kill(child, signal.SIGKILL)
        parent.stdout.close()  # type: ignore[union-attr]


def test_default_run_is_cut_to_its_time_bound_and_says_so_first(
    tiny, tiny_dataset, base_cache, tmp_path
) -> None:
    events: list[dict] = []
    # `epochs` decides the length (no explicit steps); a bound far below one step's time
    cfg = _cfg(
        tiny, tiny_dataset, base_cache, tmp_path / "run", steps=0, epochs=3.0, max_seconds=1e-6
    )
    result = train(cfg, events.append)
    plan = next(i for i, e in enumerate(events) if e.get("kind") == "plan")
    estimate = next(i for i, e in enumerate(events) if e.get("kind") == "estimate")
    first_step = next(i for i, e in enumerate(events) if e["phase"] == "train")
    assert plan < first_step and estimate < first_step + 1
    est = events[estimate]
    assert est["planned_from"] > 1 and est["steps"] == 1 and est["s_per_step"] > 0
    assert "--steps" in est["message"] and est["total_s"] >= 0
    assert result.steps == 1


def test_explicit_steps_are_not_cut(tiny, tiny_dataset, base_cache, tmp_path) -> None:
    events: list[dict] = []
    cfg = _cfg(tiny, tiny_dataset, base_cache, tmp_path / "run", steps=3, max_seconds=1e-6)
    result = train(cfg, events.append)
    est = next(e for e in events if e.get("kind") == "estimate")
    assert est["steps"] == 3 and result.steps == 3
