"""Entry point of the training child: `python -m finetune.child CONFIG.json`.

Prints one JSON object per line on stdout (phase, step, total, loss, tokens_s, rss, peak
RSS, peak GPU memory, eta); SIGTERM/SIGINT stop it cleanly after the current step with a
checkpoint. Exit status: 0 done, 2 user error, 3 cancelled, 1 bug.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from typing import Any

EXIT_OK, EXIT_BUG, EXIT_USER, EXIT_CANCELLED = 0, 1, 2, 3


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TQDM_DISABLE", "1")
    out = sys.stdout
    sys.stdout = sys.stderr  # libraries that print must not corrupt the JSON-lines stream

    def emit(event: dict[str, Any]) -> None:
        out.write(json.dumps(event) + "\n")
        out.flush()

    stop = {"flag": False}

    def on_signal(signum: int, _frame: Any) -> None:
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from finetune.errors import FinetuneError
    from finetune.trainer import Cancelled, train
    from finetune.types import TrainConfig

    try:
        with open(args[0], encoding="utf-8") as fh:
            cfg = TrainConfig.from_json(json.load(fh))
        result = train(cfg, emit, lambda: stop["flag"])
    except Cancelled as exc:
        emit({"phase": "cancelled", "step": exc.step, "error": exc.message, "kind": exc.kind})
        return EXIT_CANCELLED
    except FinetuneError as exc:
        emit({"phase": "error", "error": exc.message, "kind": exc.kind})
        return EXIT_USER
    except MemoryError:
        emit({"phase": "error", "kind": "out_of_memory",
              "error": "Training ran out of memory; use --offload disk or a lower --max-rss-gb/--seq-len."})
        return EXIT_USER
    except Exception as exc:  # noqa: BLE001 - a bug: keep the traceback in the log, one line for the user
        traceback.print_exc()
        emit({"phase": "error", "kind": "internal", "error": f"Training failed: {type(exc).__name__}: {exc}"})
        return EXIT_BUG
    emit({"phase": "done", "result": result.to_json()})
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
