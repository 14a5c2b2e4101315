"""Parent side of training: start the child, stream its progress, cancel, collect the result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from finetune.errors import FinetuneError
from finetune.meters import allocator_env
from finetune.types import TrainConfig, TrainResult

OnEvent = Callable[[dict[str, Any]], None]
CONFIG_NAME = "train_config.json"
STOP_WAIT_S = 30.0  # the child checkpoints and exits within seconds of SIGTERM; then SIGKILL


class Terminated(KeyboardInterrupt):
    """SIGTERM to the process running a job: unwinds like Ctrl-C, so the child is stopped first."""


def _on_sigterm(signum: int, _frame: Any) -> None:
    raise Terminated()


class TrainingJob:
    """One training child. Use as a context manager so the child never outlives us."""

    def __init__(self, cfg: TrainConfig, *, python: str | None = None) -> None:
        self.cfg = cfg
        self.python = python or sys.executable
        self.proc: subprocess.Popen[str] | None = None
        self.result: TrainResult | None = None
        self.last: dict[str, Any] = {}
        self.allocator = ""
        self._old_sigterm: Any = None
        self._sigterm_installed = False

    def start(self) -> TrainingJob:
        work = Path(self.cfg.work_dir)
        work.mkdir(parents=True, exist_ok=True)
        cfg_path = work / CONFIG_NAME
        cfg_path.write_text(json.dumps(self.cfg.to_json(), indent=2))
        env, self.allocator = allocator_env(dict(os.environ))
        env["HF_HUB_OFFLINE"] = "1"
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        log = open(work / "child.log", "a", encoding="utf-8")
        try:
            self.proc = subprocess.Popen(
                [self.python, "-m", "finetune.child", str(cfg_path)],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
                bufsize=1,
            )
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def events(self) -> Iterator[dict[str, Any]]:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(event, dict):
                continue
            self.last = event
            if event.get("phase") == "done":
                self.result = TrainResult(
                    **{
                        **event["result"],
                        "losses": tuple(event["result"]["losses"]),
                        "notes": tuple(event["result"]["notes"]),
                    }
                )
            yield event

    def cancel(self) -> None:
        """Ask the child to stop after its current step (it writes a checkpoint first)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self) -> TrainResult:
        assert self.proc is not None
        for _ in self.events():
            pass
        code = self.proc.wait()
        if self.result is not None and code == 0:
            return self.result
        if self.last.get("phase") in ("error", "cancelled"):
            raise FinetuneError(
                str(self.last.get("error")), kind=str(self.last.get("kind", "finetune_error"))
            )
        log = Path(self.cfg.work_dir) / "child.log"
        raise FinetuneError(
            f"Training stopped unexpectedly (exit status {code}); run it again to resume from "
            f"the last checkpoint (details in {log}).",
            kind="training_crashed",
        )

    def __enter__(self) -> TrainingJob:
        # Without this a SIGTERM ends us at once and leaves the child training alone (it
        # would notice the orphaning and stop, but seconds later and unasked).
        if threading.current_thread() is threading.main_thread() and not self._sigterm_installed:
            self._old_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
            self._sigterm_installed = True
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._sigterm_installed:
                signal.signal(
                    signal.SIGTERM, signal.SIG_IGN
                )  # a second SIGTERM must not cut the wait short
            self.stop()
        finally:
            if self._sigterm_installed:
                old = self._old_sigterm
                signal.signal(signal.SIGTERM, old if old is not None else signal.SIG_DFL)
                self._sigterm_installed = False

    def stop(self, timeout: float = STOP_WAIT_S) -> None:
        """Cancel the child if it still runs and wait for it (SIGKILL after `timeout`)."""
        if self.proc is not None and self.proc.poll() is None:
            self.cancel()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()


def run_training(cfg: TrainConfig, on_event: OnEvent | None = None) -> TrainResult:
    """Train in a child process; `on_event` sees every progress line."""
    with TrainingJob(cfg) as job:
        for event in job.events():
            if on_event is not None:
                on_event(event)
        return job.wait()
