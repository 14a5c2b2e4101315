"""`memex moe ...`: MoE expert-offloading engine tools.

Owned by the engine; the MoEfication/prediction work adds `moefy` and `lrc` below, in
the marked section. Heavy libraries load inside the command functions only.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import click

from app.commands._common import AppContext, memex_command
from app.errors import MemexError


@click.group(name="moe")
def moe() -> None:
    """MoE expert-offloading engine tools (bench, moefy, lrc)."""


@contextlib.contextmanager
def moe_errors() -> Iterator[None]:
    """Turn engine errors into one-sentence MemexErrors (no traceback for bad input)."""
    try:
        yield
    except MemexError:
        raise
    except Exception as exc:
        from inference.moe.errors import MoEError

        if isinstance(exc, MoEError):
            raise MemexError(str(exc), kind=exc.kind) from exc
        raise


def _progress(message: str) -> None:
    click.echo(f"memex moe: {message}", err=True)


def _human_bench(p: dict[str, Any]) -> str:
    m = p["model"]
    lines = [f"{m['name']}: {m['layers']} layers x {m['experts']} experts, top-{m['top_k']}, "
             f"{m['expert_bytes'] / 1e6:.2f} MB/expert; device {p['device']}; budget {p['budget']} "
             f"({p['budget_fraction']:.0%} of experts)",
             f"{'policy':<12}{'prefill/s':>10}{'decode/s':>10}{'hit':>7}{'MB moved':>10}{'stall ms':>10}"
             f"{'fast MB':>9}{'RSS MB':>8}{'max|dlogit|':>12}"]
    for name, r in p["policies"].items():
        diff = r["max_abs_logit_diff"]
        lines.append(
            f"{name:<12}{r['prefill_tok_s']:>10.1f}{r['decode_tok_s']:>10.1f}{r['hit_rate']:>7.2f}"
            f"{r['bytes_moved'] / 1e6:>10.1f}{r['stall_ms']:>10.1f}{r['fast_tier_bytes'] / 1e6:>9.1f}"
            f"{r['peak_rss_mb']:>8.0f}{'-' if diff is None else f'{diff:.1e}':>12}"
        )
    return "\n".join(lines)


@memex_command("bench", group=moe, human=_human_bench)
@click.option("--model", "model_spec", default="tiny", show_default=True,
              help="tiny, tiny-olmoe, tiny-qwen2_moe, moefied, or a checkpoint folder.")
@click.option("--budget", default="2x", show_default=True, help="Fast tier: fraction (0.25), bytes (2GB) or 2x.")
@click.option("--tokens", type=click.IntRange(1, 4096), default=32, show_default=True, help="Tokens to decode.")
@click.option("--prompt-tokens", type=click.IntRange(1, 8192), default=64, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.option("--policies", default="on_demand,lru,lfu,resident", show_default=True,
              help="Comma-separated cache policies, run in this order in one process.")
@click.option("--slow-tier", type=click.Choice(["auto", "disk", "memory", "pinned"]), default="auto",
              show_default=True, help="auto: disk on CPU, pinned CPU memory on CUDA.")
@click.option("--reference", type=click.Choice(["transformers", "resident", "none"]), default="transformers",
              show_default=True, help="What max_abs_logit_diff is measured against.")
def bench(obj: AppContext, model_spec: str, budget: str, tokens: int, prompt_tokens: int, device: str,
          policies: str, slow_tier: str, reference: str) -> dict[str, Any]:
    """Benchmark cache policies on one model, budget and prompt."""
    names = [p.strip() for p in policies.split(",") if p.strip()]
    if not names:
        raise MemexError("--policies must name at least one policy.", kind="bad_input")
    with moe_errors():
        from inference.moe.bench import prompt_ids, resolve_model, run_bench
        from inference.moe.cache import create_policy
        from inference.moe.engine import load_model

        for name in names:
            create_policy(name)  # unknown names fail before any loading
        settings = obj.settings
        folder = resolve_model(model_spec, settings.models_dir)
        _progress(f"loading {folder}")
        loaded = load_model(folder, device=device, slow_tier=slow_tier,
                            cache_dir=settings.home / "cache" / "moe")
        try:
            prompt = prompt_ids(folder, prompt_tokens, loaded.cfg.vocab_size)
            return run_bench(loaded, budget=budget, tokens=tokens, policies=names, prompt=prompt,
                             reference=reference, progress=_progress)
        finally:
            loaded.close()


# ---- MoEfication / routing metrics (owned by the moefy/prediction engineer) ----------------
# Add `@memex_command("moefy", group=moe)` and `@memex_command("lrc", group=moe)` below this
# line; reuse `moe_errors()` to map engine errors. Keep heavy imports inside the functions.
# ---- end of MoEfication / routing metrics -------------------------------------------------


if __name__ == "__main__":  # pragma: no cover
    moe(sys.argv[1:])
