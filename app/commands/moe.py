"""`memex moe ...`: MoE expert-offloading engine tools.

Owned by the engine; the MoEfication/prediction work adds `moefy` and `lrc` below, in
the marked section. Heavy libraries load inside the command functions only.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
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
    lines = [
        f"{m['name']}: {m['layers']} layers x {m['experts']} experts, top-{m['top_k']}, "
        f"{m['expert_bytes'] / 1e6:.2f} MB/expert; device {p['device']}; budget {p['budget']} "
        f"({p['budget_fraction']:.0%} of experts)",
        f"{'policy':<12}{'prefill/s':>10}{'decode/s':>10}{'hit':>7}{'MB moved':>10}{'stall ms':>10}"
        f"{'fast MB':>9}{'RSS MB':>8}{'max|dlogit|':>12}",
    ]
    for name, r in p["policies"].items():
        diff = r["max_abs_logit_diff"]
        lines.append(
            f"{name:<12}{r['prefill_tok_s']:>10.1f}{r['decode_tok_s']:>10.1f}{r['hit_rate']:>7.2f}"
            f"{r['bytes_moved'] / 1e6:>10.1f}{r['stall_ms']:>10.1f}"
            f"{r['fast_tier_bytes'] / 1e6:>9.1f}"
            f"{r['peak_rss_mb']:>8.0f}{'-' if diff is None else f'{diff:.1e}':>12}"
        )
    return "\n".join(lines)


@memex_command("bench", group=moe, human=_human_bench)
@click.option(
    "--model",
    "model_spec",
    default="tiny",
    show_default=True,
    help="tiny, tiny-olmoe, tiny-qwen2_moe, moefied, or a checkpoint folder.",
)
@click.option(
    "--budget",
    default="2x",
    show_default=True,
    help="Fast tier: fraction (0.25), bytes (2GB) or 2x.",
)
@click.option(
    "--tokens",
    type=click.IntRange(1, 4096),
    default=32,
    show_default=True,
    help="Tokens to decode.",
)
@click.option("--prompt-tokens", type=click.IntRange(1, 8192), default=64, show_default=True)
@click.option(
    "--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True
)
@click.option(
    "--policies",
    default="on_demand,lru,lfu,resident",
    show_default=True,
    help="Comma-separated cache policies, run in this order in one process.",
)
@click.option(
    "--slow-tier",
    type=click.Choice(["auto", "disk", "memory", "pinned"]),
    default="auto",
    show_default=True,
    help="auto: disk on CPU, pinned CPU memory on CUDA.",
)
@click.option(
    "--reference",
    type=click.Choice(["transformers", "resident", "none"]),
    default="transformers",
    show_default=True,
    help="What max_abs_logit_diff is measured against.",
)
@click.option(
    "--threads",
    type=click.IntRange(0, 256),
    default=0,
    show_default=True,
    help="torch CPU threads; 0 = physical cores minus one (one core stays with the loader).",
)
@click.option(
    "--quant",
    default="none",
    show_default=True,
    help="How experts are stored and moved: none (exact), int8, int4, or int4_int2 (INT4 "
    "cached, INT2 for experts that are not hot yet; formerly 'fate').",
)
@click.option(
    "--prefill-chunk",
    type=click.IntRange(0, 8192),
    default=0,
    show_default=True,
    help="Prefill MoE blocks in chunks of N tokens, loading chunk c+1's experts while chunk c "
    "computes (0: the whole prompt at once).",
)
@click.option(
    "--rounds",
    type=click.IntRange(1, 20),
    default=1,
    show_default=True,
    help="Run the policies N times, interleaved, and report each one's median speed.",
)
@click.option(
    "--testbed",
    default=None,
    help="A real-size testbed instead of --model: olmoe-real (8 GB of OLMoE-sized "
    "experts on disk, written once) or olmoe-tiny.",
)
@click.option(
    "--routing",
    default="model",
    show_default=True,
    help="Testbed routing: trace (the MoEfied model's recorded routing), trace:FILE, "
    "random, or model (the testbed's own routers).",
)
@click.option(
    "--compute",
    type=click.Choice(["auto", "fused", "loop"]),
    default="auto",
    show_default=True,
    help="Expert compute: fused grouped GEMMs or one loop step per expert.",
)
def bench(
    obj: AppContext,
    model_spec: str,
    budget: str,
    tokens: int,
    prompt_tokens: int,
    device: str,
    policies: str,
    slow_tier: str,
    reference: str,
    threads: int,
    quant: str,
    prefill_chunk: int,
    rounds: int,
    testbed: str | None,
    routing: str,
    compute: str,
) -> dict[str, Any]:
    """Benchmark cache policies on one model, budget and prompt."""
    from inference.moe.storage.quant import QUANT_ALIASES, QUANT_SCHEMES

    names = [p.strip() for p in policies.split(",") if p.strip()]
    if not names:
        raise MemexError("--policies must name at least one policy.", kind="bad_input")
    quant = QUANT_ALIASES.get(quant, quant)  # 'fate' is int4_int2's old name
    if quant not in QUANT_SCHEMES:
        raise MemexError(
            f"Unknown --quant {quant!r}; choose one of: {', '.join(QUANT_SCHEMES)}.",
            kind="bad_input",
        )
    with moe_errors():
        from inference.moe.cache import create_policy
        from inference.moe.engine import configure_threads, load_model
        from inference.moe.resolve import resolve_model
        from inference.moe.tools.bench import prompt_ids, run_bench

        for name in names:
            create_policy(name)  # unknown names fail before any loading
        settings = obj.settings
        n_threads = configure_threads(threads) if device != "cuda" else threads
        if testbed is not None:
            return _bench_testbed(
                obj,
                testbed,
                routing,
                device,
                budget,
                tokens,
                prompt_tokens,
                names,
                prefill_chunk,
                rounds,
                compute,
                n_threads,
            )
        if routing != "model":
            raise MemexError(
                "--routing needs --testbed (a checkpoint routes with its own routers).",
                kind="bad_input",
            )
        folder = resolve_model(model_spec, settings.models_dir)
        _progress(f"loading {folder}")
        loaded = load_model(
            folder,
            device=device,
            slow_tier=slow_tier,
            cache_dir=settings.home / "cache" / "moe",
            quant=quant,
        )
        loaded.compute = compute
        try:
            prompt = prompt_ids(folder, prompt_tokens, loaded.cfg.vocab_size)
            result = run_bench(
                loaded,
                budget=budget,
                tokens=tokens,
                policies=names,
                prompt=prompt,
                reference=reference,
                progress=_progress,
                prefill_chunk=prefill_chunk,
                rounds=rounds,
            )
            result["threads"] = n_threads
            return result
        finally:
            loaded.close()


def testbed_root(settings: Any) -> Any:
    """Where real-size testbeds live: settings.moe_testbed_dir, else the user cache folder."""
    if getattr(settings, "moe_testbed_dir", ""):
        return Path(settings.moe_testbed_dir).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("memex", appauthor=False)) / "moe-testbeds"


def _bench_testbed(
    obj: AppContext,
    name: str,
    routing: str,
    device: str,
    budget: str,
    tokens: int,
    prompt_tokens: int,
    names: list[str],
    prefill_chunk: int,
    rounds: int,
    compute: str,
    n_threads: int,
) -> dict[str, Any]:
    from inference.moe.storage.store import DiskSlowTier
    from inference.moe.tools.bench import run_bench
    from inference.moe.tools.testbed import ROUTINGS, ensure_testbed, load_testbed

    kind, _, trace_arg = routing.partition(":")
    if kind not in ROUTINGS or (trace_arg and kind != "trace"):
        raise MemexError(
            f"Unknown --routing {routing!r}; use trace, trace:FILE, random or model.",
            kind="bad_input",
        )
    root = testbed_root(obj.settings)
    folder = ensure_testbed(name, root, _progress)
    trace: Path | None = None
    if kind == "trace":
        trace = _default_trace(obj, root) if not trace_arg else Path(trace_arg)
    loaded = load_testbed(folder, device=device, routing=kind, trace=trace)
    loaded.compute = compute
    try:
        # checksums once, before any timing: else the first policy to read a blob pays for it
        _progress("verifying the expert file's checksums")
        if isinstance(loaded.slow, DiskSlowTier):  # a testbed's experts are one file on disk
            loaded.slow.verify_all()
        prompt = [(17 + 31 * i) % loaded.cfg.vocab_size for i in range(prompt_tokens)]
        result = run_bench(
            loaded,
            budget=budget,
            tokens=tokens,
            policies=names,
            prompt=prompt,
            reference="resident",
            progress=_progress,
            prefill_chunk=prefill_chunk,
            rounds=rounds,
        )
        result.update(threads=n_threads, testbed=name, routing=routing, compute=compute)
        if loaded.routing is not None and hasattr(loaded.routing, "meta"):
            result["trace"] = loaded.routing.meta
        return result
    finally:
        loaded.close()


def _default_trace(obj: AppContext, root: Any) -> Any:
    """The default routing trace (the MoEfied model on held-out text), recorded on first use."""
    from inference.moe.tools.testbed import TRACE_FILE, write_trace

    path = root / "traces" / "moefied" / TRACE_FILE
    if not path.is_file():
        from inference.moe.tools.moefy import ensure_moefied

        moefied = ensure_moefied(obj.settings.models_dir, progress=_progress)
        _progress(f"recording the routing trace of {moefied} on held-out text")
        write_trace(moefied, path.parent)
    return path


# ---- MoEfication / routing metrics (owned by the moefy/prediction engineer) ----------------
# Add `@memex_command("moefy", group=moe)` and `@memex_command("lrc", group=moe)` below this
# line; reuse `moe_errors()` to map engine errors. Keep heavy imports inside the functions.


def _human_moefy(p: dict[str, Any]) -> str:
    return (
        f"MoEfied model in {p['out']}: {p['layers']} layers x {p['experts']} experts, "
        f"top-{p['top_k']} "
        f"({p['active_share']:.0%} active); held-out perplexity dense {p['ppl_dense']:.2f} -> "
        f"MoE {p['ppl_moe']:.2f} ({p['ppl_ratio']:.2f}x); hottest expert serves "
        f"{p['usage_skew'].get('hottest_expert_token_share_mean', 0):.0%} of tokens on average"
    )


@memex_command("moefy", group=moe, human=_human_moefy)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder (default: MEMEX_HOME/models/moefied).",
)
@click.option("--experts", type=int, default=64, show_default=True, help="Experts per layer.")
@click.option(
    "--top-k", "top_k", type=int, default=16, show_default=True, help="Active experts per token."
)
@click.option("--train-tokens", type=click.IntRange(256, 65536), default=8192, show_default=True)
@click.option("--eval-tokens", type=click.IntRange(256, 32768), default=2048, show_default=True)
@click.option(
    "--layers", type=int, default=None, help="MoEfy only the first N layers (quick tests)."
)
def moefy_cmd(
    obj: AppContext,
    out: str | None,
    experts: int,
    top_k: int,
    train_tokens: int,
    eval_tokens: int,
    layers: int | None,
) -> dict[str, Any]:
    """Turn the bundled dense SmolLM2 into a Mixtral-format MoE (the realistic testbed)."""
    with moe_errors():
        from inference.moe.tools.moefy import MoefyOptions, moefy

        options = MoefyOptions(
            experts=experts,
            top_k=top_k,
            train_tokens=train_tokens,
            eval_tokens=eval_tokens,
            layers=layers,
        )
        target = Path(out).expanduser() if out else obj.settings.models_dir / "moefied"
        return moefy(target, options, _progress).to_dict()


def _human_lrc(p: dict[str, Any]) -> str:
    sch = ", ".join(f"{k} {v:.3f}" for k, v in p["sch"].items())
    return (
        f"{p['model']}: SRP {p['srp']:.3f} (segment {p['segment']}); "
        f"SCH {sch} over {p['tokens']} tokens"
    )


def _traced_model(obj: AppContext, model_spec: str) -> Any:
    from inference.moe.resolve import resolve_model

    if model_spec == "moefied":
        from inference.moe.tools.moefy import ensure_moefied

        return ensure_moefied(obj.settings.models_dir, progress=_progress)
    return resolve_model(model_spec, obj.settings.models_dir)


@memex_command("lrc", group=moe, human=_human_lrc)
@click.option(
    "--model",
    "model_spec",
    default="moefied",
    show_default=True,
    help="moefied, tiny, or a checkpoint folder.",
)
@click.option(
    "--segment", type=int, default=16, show_default=True, help="Segment length m in tokens."
)
@click.option(
    "--tokens",
    type=click.IntRange(16, 32768),
    default=2048,
    show_default=True,
    help="Held-out tokens to trace.",
)
def lrc_cmd(obj: AppContext, model_spec: str, segment: int, tokens: int) -> dict[str, Any]:
    """Local routing consistency (SRP, SCH at 1x/2x/4x) from routing traces of held-out text."""
    if segment < 1:
        raise MemexError(
            f"--segment must be a positive number of tokens (got {segment}).", kind="bad_input"
        )
    if segment > tokens:
        raise MemexError(
            f"--segment {segment} is longer than the {tokens} traced tokens.", kind="bad_input"
        )
    with moe_errors():
        from inference.moe.predictors.routing_trace import trace_text
        from inference.moe.tools.lrc import lrc_metrics

        folder = _traced_model(obj, model_spec)
        _progress(f"tracing {tokens} held-out tokens through {folder}")
        trace = trace_text(folder, "eval", tokens)
        layers = [e.numpy() for e in trace.experts]
        return lrc_metrics(layers, trace.num_experts, segment, model=model_spec).to_dict()


def _human_predict(p: dict[str, Any]) -> str:
    lines = [
        f"{p['model']}: next-layer expert prediction over {p['tokens']} held-out tokens "
        f"(top-{p['top_k']})"
    ]
    for name, r in p["predictors"].items():
        lines.append(f"  {name:<12} width {r['width']:>3}  accuracy {r['accuracy']:.3f}")
    return "\n".join(lines)


@memex_command("predict", group=moe, human=_human_predict)
@click.option(
    "--model",
    "model_spec",
    default="moefied",
    show_default=True,
    help="moefied, tiny, or a checkpoint folder.",
)
@click.option("--tokens", type=click.IntRange(16, 32768), default=2048, show_default=True)
@click.option(
    "--extra",
    type=click.IntRange(0, 64),
    default=1,
    show_default=True,
    help="m: predictors name top-(k+m) experts.",
)
@click.option(
    "--predictors",
    default="prev_token,cross_layer,linear_map",
    show_default=True,
    help="prev_token, cross_layer, linear_map, wide_map (old names: fate, fate_linear, fate_plus).",
)
def predict_cmd(
    obj: AppContext, model_spec: str, tokens: int, extra: int, predictors: str
) -> dict[str, Any]:
    """Offline accuracy of next-layer expert predictors on routing traces of held-out text."""
    names = [n.strip() for n in predictors.split(",") if n.strip()]
    with moe_errors():
        from inference.moe.predictors.predict import (
            PREDICTOR_ALIASES,
            PREDICTORS,
            evaluate,
            fitted_predictor,
        )
        from inference.moe.predictors.routing_trace import trace_text

        unknown = [n for n in names if PREDICTOR_ALIASES.get(n, n) not in PREDICTORS]
        if unknown or not names:
            raise MemexError(
                f"Unknown predictor {unknown[0] if unknown else ''!r}; choose from "
                f"{', '.join(PREDICTORS)}.",
                kind="bad_input",
            )
        folder = _traced_model(obj, model_spec)
        _progress(f"tracing {tokens} held-out tokens through {folder}")
        trace = trace_text(folder, "eval", tokens)
        out: dict[str, Any] = {
            "model": model_spec,
            "tokens": trace.tokens,
            "top_k": trace.top_k,
            "experts": trace.num_experts,
            "predictors": {},
        }
        for name in names:
            pred = fitted_predictor(
                name,
                folder,
                trace.routers,
                trace.top_k,
                extra,
                cache_dir=obj.settings.home / "cache" / "moe",
            )
            out["predictors"][name] = evaluate(pred, trace).to_dict()
        return out


# ---- end of MoEfication / routing metrics -------------------------------------------------


if __name__ == "__main__":  # pragma: no cover
    moe(sys.argv[1:])
