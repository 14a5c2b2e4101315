"""MoE engine benchmark over several budgets; prints one JSON object.

    python benchmarks/moe.py [--model moefied|tiny|PATH] [--budgets 1x,2x,4x,0.5] [--tokens 32]
                             [--quants none,int8,int4,fate] [--same-bytes] [--prefill-chunk N]
                             [--rounds N]

Each budget runs every policy in one process on the same prompt (ratios are fair); the
summary gives, per budget, decode speed relative to on_demand and to resident, and the
peak RSS of each policy relative to resident (the point of offloading), and the ceiling
arithmetic (resident / lru, resident / on_demand: no policy decodes faster than resident).
With several --quants each scheme runs the same budgets (same number of experts, or with
--same-bytes the fp32 budget's bytes). It runs in
process via `memex moe bench`'s own functions, with MEMEX_HOME (or --home) for models.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _summary(pol: dict) -> dict:
    summary = {}
    for name, r in pol.items():
        s = {
            "decode_tok_s": round(r["decode_tok_s"], 2),
            "prefill_tok_s": round(r["prefill_tok_s"], 1),
            "hit_rate": round(r["hit_rate"], 3),
            "bytes_moved_per_token": round(r["bytes_moved_per_token"]),
            "peak_rss_mb": r["peak_rss_mb"],
            "max_abs_logit_diff": r["max_abs_logit_diff"],
        }
        for key in (
            "decode_cpu_ms_per_token",
            "prediction_accuracy",
            "in_time_hit_rate",
            "prefetch_bytes_wasted",
            "late_hits",
        ):
            if key in r:
                s[key] = r[key]
        for base in ("on_demand", "lru", "resident"):
            if base in pol and pol[base]["decode_tok_s"] and name != base:
                s[f"decode_vs_{base}"] = round(r["decode_tok_s"] / pol[base]["decode_tok_s"], 3)
        if "resident" in pol and pol["resident"]["peak_rss_mb"]:
            s["rss_vs_resident"] = round(r["peak_rss_mb"] / pol["resident"]["peak_rss_mb"], 3)
        summary[name] = s
    if "resident" in pol:
        # the resident policy is the ceiling: no policy can decode faster than it
        res = pol["resident"]["decode_tok_s"]
        summary["ceiling"] = {
            f"resident_vs_{b}": round(res / pol[b]["decode_tok_s"], 3)
            for b in ("lru", "on_demand")
            if b in pol and pol[b]["decode_tok_s"]
        }
    return summary


def main(argv: list[str] | None = None) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="moefied")
    ap.add_argument("--budgets", default="1x,2x,4x")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--policies", default="on_demand,lru,lfu,resident")
    ap.add_argument(
        "--reference", default="transformers", choices=["transformers", "resident", "none"]
    )
    ap.add_argument("--home", default=None)
    ap.add_argument("--threads", type=int, default=0, help="0 = physical cores minus one")
    ap.add_argument(
        "--quants",
        default="none",
        help="comma-separated expert storage schemes, each run on every budget",
    )
    ap.add_argument(
        "--same-bytes",
        action="store_true",
        help="quantized runs get the fp32 budget's bytes (more experts fit) "
        "instead of the same number of experts",
    )
    ap.add_argument("--prefill-chunk", type=int, default=0)
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="policies run N times, interleaved; speeds are medians",
    )
    ap.add_argument(
        "--json", action="store_true", help="print the JSON object on one line (default: indented)"
    )
    args = ap.parse_args(argv)

    from app.settings import load_settings
    from inference.moe.engine import configure_threads, load_model
    from inference.moe.resolve import resolve_model
    from inference.moe.storage.store import parse_budget
    from inference.moe.tools.bench import prompt_ids, run_bench

    settings = load_settings(home=args.home)
    threads = configure_threads(args.threads)
    folder = resolve_model(args.model, settings.models_dir)
    loaded = load_model(folder, device=args.device, cache_dir=settings.home / "cache" / "moe")
    policies = [p for p in args.policies.split(",") if p]
    out: dict = {
        "model": None,
        "device": loaded.device,
        "threads": threads,
        "budgets": {},
        "summary": {},
        "quants": {},
    }
    try:
        prompt = prompt_ids(folder, args.prompt_tokens, loaded.cfg.vocab_size)
        first = True
        for quant in args.quants.split(","):
            lq = loaded if quant == "none" else loaded.with_quant(quant)
            try:
                for budget in args.budgets.split(","):
                    spec = budget
                    if args.same_bytes and quant != "none":
                        spec = str(parse_budget(budget, loaded.layout, loaded.cfg.top_k))
                    # the transformers reference is the same for every run: check it once
                    ref = args.reference if first else "resident"
                    first = False
                    res = run_bench(
                        lq,
                        budget=spec,
                        tokens=args.tokens,
                        policies=policies,
                        prompt=prompt,
                        reference=ref,
                        progress=lambda m, b=budget, q=quant: print(
                            f"[{q} {b}] {m}", file=sys.stderr
                        ),
                        prefill_chunk=args.prefill_chunk,
                        rounds=args.rounds,
                    )
                    out["model"] = res["model"]
                    summary = _summary(res["policies"])
                    if quant == "none":
                        out["budgets"][budget] = res
                        out["summary"][budget] = summary
                    q = out["quants"].setdefault(
                        quant, {"expert_bytes_stored": res["expert_bytes_stored"], "summary": {}}
                    )
                    q["summary"][budget] = summary
            finally:
                if lq is not loaded:
                    lq.close()
    finally:
        loaded.close()
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
