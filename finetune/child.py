"""Entry point of the training child: `python -m finetune.child CONFIG.json`.

Prints one JSON object per line on stdout (phase, step, total, loss, tokens_s, rss, peak
RSS, peak GPU memory, eta); SIGTERM/SIGINT stop it within seconds with a checkpoint of the
last full step (the step in flight is dropped, see trainer.StopRequest). If it still runs
HARD_STOP_S after the signal (stuck inside one native call), it exits anyway: the previous
checkpoint is kept. It also stops when its parent dies, so it never trains as an orphan.
Exit status: 0 done, 2 user error, 3 cancelled, 1 bug.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_BUG, EXIT_USER, EXIT_CANCELLED = 0, 1, 2, 3
HARD_STOP_S = 8.0
PARENT_POLL_S = 0.5


def _arm_hard_stop(on_deadline: Callable[[], None]) -> None:
    """After the first signal, call `on_deadline` HARD_STOP_S later from a thread.

    The signal reaches this thread through the wakeup fd, which the C-level handler writes even
    while the main thread is inside one long native call and cannot run the Python handler.
    """
    try:
        r, w = os.pipe()
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except (OSError, ValueError):  # no wakeup fd here: the Python handler alone has to do
        return

    def wait() -> None:
        os.read(r, 1)
        time.sleep(HARD_STOP_S)
        on_deadline()

    threading.Thread(target=wait, name="hard-stop", daemon=True).start()


def _watch_parent(parent: int) -> None:
    """SIGTERM ourselves once the parent is gone (we were re-parented), e.g. after a kill -9
    of `memex train`."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TQDM_DISABLE", "1")
    out = sys.stdout
    sys.stdout = sys.stderr  # libraries that print must not corrupt the JSON-lines stream

    from finetune.errors import FinetuneError
    from finetune.trainer import Cancelled, StopNow, StopRequest, train

    stop = StopRequest()
    lock = threading.Lock()

    def emit(event: dict[str, Any]) -> None:
        with lock:
            try:
                out.write(json.dumps(event) + "\n")
                out.flush()
            except BrokenPipeError:
                # Nobody reads our progress any more: the parent is gone. Stop as on SIGTERM
                # (checkpoint first); the rest of the output, buffered bytes included, goes nowhere.
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, out.fileno())
                os.close(null)
                stop.request()

    def hard_stop() -> None:
        try:
            emit(
                {
                    "phase": "cancelled",
                    "step": None,
                    "kind": "cancelled",
                    "error": "Training was stopped; run it again to resume from the last "
                    "checkpoint.",
                }
            )
        finally:
            os._exit(EXIT_CANCELLED)

    def on_signal(signum: int, _frame: Any) -> None:
        stop.request()  # raises StopNow here unless the trainer is in a critical section

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _arm_hard_stop(hard_stop)
    threading.Thread(
        target=_watch_parent, args=(os.getppid(),), name="parent-watch", daemon=True
    ).start()
    try:
        from finetune.types import TrainConfig

        with open(args[0], encoding="utf-8") as fh:
            cfg = TrainConfig.from_json(json.load(fh))
        result = train(cfg, emit, stop)
    except StopNow:  # stopped before the first step: there is nothing to checkpoint yet
        emit(
            {
                "phase": "cancelled",
                "step": 0,
                "kind": "cancelled",
                "error": "Training was cancelled before it started; run it again to start over.",
            }
        )
        return EXIT_CANCELLED
    except Cancelled as exc:
        emit({"phase": "cancelled", "step": exc.step, "error": exc.message, "kind": exc.kind})
        return EXIT_CANCELLED
    except FinetuneError as exc:
        emit({"phase": "error", "error": exc.message, "kind": exc.kind})
        return EXIT_USER
    except MemoryError:
        emit(
            {
                "phase": "error",
                "kind": "out_of_memory",
                "error": "Training ran out of memory; use --offload disk or a lower "
                "--max-rss-gb/--seq-len.",
            }
        )
        return EXIT_USER
    except Exception as exc:  # noqa: BLE001 - a bug: keep the traceback in the log, one line for the user
        traceback.print_exc()
        emit(
            {
                "phase": "error",
                "kind": "internal",
                "error": f"Training failed: {type(exc).__name__}: {exc}",
            }
        )
        return EXIT_BUG
    emit({"phase": "done", "result": result.to_json()})
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
