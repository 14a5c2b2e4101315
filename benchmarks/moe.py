"""MoE engine benchmark over several budgets; prints one JSON object.

    python benchmarks/moe.py [--model moefied|tiny|PATH] [--budgets 1x,2x,4x,0.5] [--tokens 32]

Each budget runs every policy in one process on the same prompt (ratios are fair); the
summary gives, per budget, decode speed relative to on_demand and to resident, and the
peak RSS of each policy relative to resident (the point of offloading). It runs in
process via `memex moe bench`'s own functions, with MEMEX_HOME (or --home) for models.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


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
    args = ap.parse_args(argv)

    from app.settings import load_settings
    from inference.moe.bench import prompt_ids, resolve_model, run_bench
    from inference.moe.engine import configure_threads, load_model

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
    }
    try:
        prompt = prompt_ids(folder, args.prompt_tokens, loaded.cfg.vocab_size)
        for i, budget in enumerate(args.budgets.split(",")):
            # the transformers reference is the same for every budget: check it once
            ref = args.reference if i == 0 else "resident"
            res = run_bench(
                loaded,
                budget=budget,
                tokens=args.tokens,
                policies=policies,
                prompt=prompt,
                reference=ref,
                progress=lambda m, b=budget: print(f"[{b}] {m}", file=sys.stderr),
            )
            out["model"] = res["model"]
            out["budgets"][budget] = res
            pol = res["policies"]
            summary = {}
            for name, r in pol.items():
                s = {
                    "decode_tok_s": round(r["decode_tok_s"], 2),
                    "hit_rate": round(r["hit_rate"], 3),
                    "peak_rss_mb": r["peak_rss_mb"],
                    "max_abs_logit_diff": r["max_abs_logit_diff"],
                }
                if "on_demand" in pol and pol["on_demand"]["decode_tok_s"]:
                    s["decode_vs_on_demand"] = round(
                        r["decode_tok_s"] / pol["on_demand"]["decode_tok_s"], 3
                    )
                if "resident" in pol and pol["resident"]["decode_tok_s"]:
                    s["decode_vs_resident"] = round(
                        r["decode_tok_s"] / pol["resident"]["decode_tok_s"], 3
                    )
                    s["rss_vs_resident"] = round(
                        r["peak_rss_mb"] / pol["resident"]["peak_rss_mb"], 3
                    )
                summary[name] = s
            out["summary"][budget] = summary
    finally:
        loaded.close()
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
