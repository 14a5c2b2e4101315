"""The Training screen's calls into app/training.py, adapters.py and training_set.py; worker
threads only, plain data out.

Training runs in a child process (finetune.runner). Cancelling raises `Cancelled` from the
progress callback: the runner's context manager then asks the child to stop after its
current step (it checkpoints first), and the active adapter is never touched.
"""

from __future__ import annotations

from typing import Any

from app.gui.workers import JobContext


class Cancelled(Exception):
    """Raised inside the progress callback to stop a training run."""


def adapters(settings: Any) -> dict[str, Any]:
    from app.adapters import AdapterStore

    store = AdapterStore(settings)
    versions = []
    for v in reversed(store.versions()):
        m = store.metrics(v)
        versions.append(
            {
                "version": v,
                "created_at": m.get("created_at", ""),
                "steps": m.get("steps"),
                "loss_first": m.get("loss_first"),
                "loss_last": m.get("loss_last"),
                "eval": m.get("eval"),
            }
        )
    return {"versions": versions, "active": store.active()}


def activate(settings: Any, version: str) -> str:
    from app.adapters import AdapterStore

    return str(AdapterStore(settings).activate(version))


def rollback(settings: Any) -> str | None:
    from app.adapters import AdapterStore

    return AdapterStore(settings).rollback()


def preview(services: Any, limit: int = 200) -> dict[str, Any]:
    from app.training_set import prepare_dataset

    services.memory()
    path, examples = prepare_dataset(services.runtime)
    splits: dict[str, int] = {}
    for e in examples:
        splits[e.split] = splits.get(e.split, 0) + 1
    rows = [
        {"question": e.question, "answer": e.answer, "split": e.split, "kind": e.kind}
        for e in examples[:limit]
    ]
    return {"path": str(path), "examples": len(examples), "splits": splits, "rows": rows}


def run_training(services: Any, options: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    from app.training import TrainOptions, train

    services.memory()

    def on_event(event: dict[str, Any]) -> None:
        ctx.progress(dict(event))
        if ctx.cancelled:
            raise Cancelled()

    try:
        return train(services.runtime, TrainOptions(**options), on_event)
    except Cancelled:
        return {"cancelled": True}


def evaluate(services: Any, version: str | None) -> dict[str, Any]:
    from app.training import evaluate as do_eval

    services.memory()
    return dict(do_eval(services.runtime, version))
