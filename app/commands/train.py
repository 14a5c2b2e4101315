"""`memex train`, `memex eval` and `memex adapters list|activate|rollback`.

Training progress goes to stderr as JSON lines (one per step); stdout carries only the
final JSON object with --json. Heavy libraries load inside app.training and finetune.
"""

from __future__ import annotations

import json
from typing import Any

import click

from app.commands._common import AppContext, memex_command

OFFLOAD = click.Choice(["none", "cpu", "disk"])


def _progress(event: dict[str, Any]) -> None:
    if isinstance(event.get("step"), int) and isinstance(event.get("total"), int):
        from app.service.jobs import report_progress  # how far an interrupted run got

        report_progress(event["step"], event["total"], str(event.get("phase", "")))
    click.echo(json.dumps(event), err=True)


def _progress_for(obj: AppContext) -> Any:
    """JSON lines on stderr; in a terminal the plan and the estimate also as a sentence, since
    they are what decides whether to let a long run go on."""
    if obj.json:
        return _progress

    def progress(event: dict[str, Any]) -> None:
        _progress(event)
        if event.get("phase") == "note" and event.get("kind") in ("plan", "estimate"):
            click.echo(f"memex train: {event['message']}.", err=True)

    return progress


def _human_train(p: dict[str, Any]) -> str:
    return (
        f"Trained adapter {p['version']} in {p['steps']} steps: loss {p['loss_first']:.3f} -> "
        f"{p['loss_last']:.3f}, peak RSS {p['peak_rss_mb']:.0f} MB, "
        f"{p['train_tok_s']:.0f} tokens/s.\n"
        f"It is now active: {p['adapter']}"
    )


@memex_command("train", human=_human_train)
@click.option(
    "--offload",
    type=OFFLOAD,
    default="disk",
    show_default=True,
    help="none: baseline; cpu: ZeRO-Offload on a GPU; disk: low-memory laptop mode.",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Optimizer steps (default: from --epochs, cut to what fits in 30 minutes at the pace of "
    "the first step; the estimate is printed before the run goes on).",
)
@click.option(
    "--epochs",
    type=click.FloatRange(min=0.1, max=100),
    default=5.0,
    show_default=True,
    help="Passes over the dataset; each memory is asked ~10 ways per pass.",
)
@click.option("--seq-len", type=click.IntRange(min=32, max=8192), default=512, show_default=True)
@click.option("--batch", type=click.IntRange(min=1, max=256), default=4, show_default=True)
@click.option(
    "--max-rss-gb",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Memory budget; picks the micro-batch to fit (0: no limit).",
)
@click.option(
    "--max-gpu-gb",
    type=click.FloatRange(min=0),
    default=0.0,
    help="With --offload cpu on a GPU: memory activations may use; layers that fit are not "
    "recomputed (0: least memory).",
)
@click.option("--lr", type=click.FloatRange(min=1e-7, max=1.0), default=1e-3, show_default=True)
@click.option("--rank", type=click.IntRange(min=1, max=256), default=16, show_default=True)
@click.option(
    "--dataset",
    type=click.Path(dir_okay=False),
    default=None,
    help="Train on this (edited) JSONL dataset instead of synthesizing one.",
)
@click.option(
    "--prepare", is_flag=True, help="Only write the dataset for review and print its path."
)
@click.option("--no-merge", is_flag=True, help="Do not build the merged model for fast serving.")
@click.option(
    "--lora-kind",
    type=click.Choice(["auto", "plain", "block"]),
    default="auto",
    show_default=True,
    help="block: constant over the base's 32-weight blocks, so it merges into a Q4_1/Q5_1 model "
    "at full speed; auto: block when the base allows it.",
)
def train(
    obj: AppContext,
    offload: str,
    steps: int | None,
    epochs: float,
    seq_len: int,
    batch: int,
    max_rss_gb: float,
    max_gpu_gb: float,
    lr: float,
    rank: int,
    dataset: str | None,
    prepare: bool,
    no_merge: bool,
    lora_kind: str,
) -> dict[str, Any]:
    """Train your personal LoRA adapter on your memories (resumes an interrupted run)."""
    from app import training

    if max_gpu_gb and offload != "cpu":
        raise click.BadParameter("it applies to --offload cpu only.", param_hint="--max-gpu-gb")
    if prepare:
        from app.training_set import prepare_dataset

        path, examples = prepare_dataset(obj.runtime)
        splits: dict[str, int] = {}
        for e in examples:
            splits[e.split] = splits.get(e.split, 0) + 1
        return {"dataset": str(path), "examples": len(examples), "splits": splits}
    opts = training.TrainOptions(
        offload=offload,
        steps=steps or 0,
        epochs=epochs,
        seq_len=seq_len,
        batch=batch,
        max_rss_gb=max_rss_gb,
        max_gpu_gb=max_gpu_gb,
        lr=lr,
        rank=rank,
        dataset=dataset or "",
        merge=not no_merge,
        lora_kind=lora_kind,
    )
    return training.train(obj.runtime, opts, _progress_for(obj))


def _human_eval(p: dict[str, Any]) -> str:
    base, ad = p["base"], p["adapter"]
    lines = [
        f"Held-out questions: {p['n']}",
        f"  base model:   {base.get('qa_accuracy', 0):.0%} correct",
    ]
    if ad.get("qa_accuracy") is not None:
        lines.append(f"  with adapter: {ad['qa_accuracy']:.0%} correct ({p.get('version')})")
    ab = p["abstention"]
    lines.append(
        f"Abstention on {ab.get('n', 0)} never-remembered questions: base {ab.get('base', 0):.0%}"
        + (f", adapter {ab['adapter']:.0%}" if "adapter" in ab else "")
    )
    return "\n".join(lines)


@memex_command("eval", human=_human_eval)
@click.option(
    "--version", default=None, help="Adapter version to evaluate (default: the active one)."
)
def eval_(obj: AppContext, version: str | None) -> dict[str, Any]:
    """Personal-memory QA in llama.cpp: base model vs. the adapter."""
    from app import training

    return training.evaluate(obj.runtime, version)


@click.group(name="adapters")
def adapters() -> None:
    """List, activate or roll back personal adapters."""


def _human_list(p: dict[str, Any]) -> str:
    if not p["adapters"]:
        return "No adapters yet; run `memex train`."
    rows = []
    for a in p["adapters"]:
        mark = "*" if a["active"] else " "
        rows.append(
            f"{mark} {a['version']}  steps={a.get('steps')}  loss={a.get('loss_last')}  "
            f"{a.get('created_at', '')}"
        )
    return "\n".join(rows)


@memex_command("list", group=adapters, human=_human_list)
def list_(obj: AppContext) -> dict[str, Any]:
    """Show adapter versions; * marks the active one."""
    from app.adapters import AdapterStore

    store = AdapterStore(obj.settings)
    active = store.active()
    out = []
    for v in store.versions():
        m = store.metrics(v)
        out.append(
            {
                "version": v,
                "active": v == active,
                "steps": m.get("steps"),
                "loss_last": m.get("loss_last"),
                "created_at": m.get("created_at"),
                "merged": (store.root / v / "merged.gguf").exists(),
            }
        )
    return {"adapters": out, "active": active}


@memex_command("activate", group=adapters)
@click.argument("version")
def activate(obj: AppContext, version: str) -> dict[str, Any]:
    """Make VERSION the adapter chat answers with."""
    from app.adapters import AdapterStore

    return {"active": AdapterStore(obj.settings).activate(version)}


@memex_command("rollback", group=adapters)
def rollback(obj: AppContext) -> dict[str, Any]:
    """Go back to the previously active adapter (or to none)."""
    from app.adapters import AdapterStore

    return {"active": AdapterStore(obj.settings).rollback()}
