"""Expert prediction, routing consistency and quantized experts on the MoEfied testbed.

Prints one JSON object:
- "predictors": offline accuracy of prev_token / fate / fate_linear at widths k and k+1 on a
  routing trace of held-out text (fate_linear's maps come from training text only);
- "lrc": SRP and SCH (1x/2x/4x) of the same trace;
- "quant": held-out perplexity with experts stored as none / int8 / int4 / fate (fate: the 2k
  most used experts of each layer INT4, the others INT2 -- the steady state of a 2x cache)
  and each scheme's bytes per expert relative to fp32 (what a miss moves).

Usage: python benchmarks/moe_prediction.py [--model DIR] [--tokens 1024]
(default model: MEMEX_HOME/models/moefied, built on first use).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _quantized_perplexity(model, ids, scheme, usage, top_k) -> float:  # type: ignore[no-untyped-def]
    import torch

    from inference.moe.moefy import perplexity
    from inference.moe.quant import get_scheme, roundtrip

    spec = get_scheme(scheme)
    saved = []
    with torch.no_grad():
        for i, layer in enumerate(model.model.layers):
            experts = layer.mlp.experts
            saved.append((experts.gate_up_proj.detach().clone(), experts.down_proj.detach().clone()))
            hot = set(torch.argsort(usage[i], descending=True)[: 2 * top_k].tolist())
            for e in range(experts.gate_up_proj.shape[0]):
                bits = spec.cached_bits if e in hot else spec.cold_bits
                experts.gate_up_proj[e] = roundtrip(experts.gate_up_proj[e], bits, spec.group_size)
                experts.down_proj[e] = roundtrip(experts.down_proj[e], bits, spec.group_size)
    try:
        return perplexity(model, ids)
    finally:
        with torch.no_grad():
            for layer, (gu, dn) in zip(model.model.layers, saved):
                layer.mlp.experts.gate_up_proj.copy_(gu)
                layer.mlp.experts.down_proj.copy_(dn)


def main() -> None:
    import torch

    from inference.moe.lrc import lrc_metrics
    from inference.moe.moefy import ensure_moefied, token_batch
    from inference.moe.predict import evaluate, fitted_predictor
    from inference.moe.quant import QUANT_SCHEMES, ExpertCodec
    from inference.moe.routing_trace import load_reference, record_trace

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="")
    ap.add_argument("--tokens", type=int, default=1024)
    args = ap.parse_args()
    t0 = time.perf_counter()
    say = lambda m: print(f"[{time.perf_counter() - t0:6.0f}s] {m}", file=sys.stderr, flush=True)
    if args.model:
        folder = Path(args.model)
    else:
        from app.settings import load_settings

        folder = ensure_moefied(load_settings().models_dir, progress=say)

    model, tokenizer, top_k = load_reference(folder)
    ids = token_batch(tokenizer, "eval", args.tokens, 256)
    say(f"tracing {ids.numel()} held-out tokens")
    trace = record_trace(model, ids, top_k)
    out: dict = {"model": str(folder), "tokens": trace.tokens, "layers": trace.layers,
                 "experts": trace.num_experts, "top_k": top_k, "predictors": {}}

    say("predictors")
    for extra in (0, 1):
        for name in ("prev_token", "fate", "fate_linear"):
            pred = fitted_predictor(name, folder, trace.routers, top_k, extra)
            if name == "prev_token" and extra:
                continue
            r = evaluate(pred, trace)
            out["predictors"][f"{name}@{r.width}"] = {"accuracy": r.accuracy, "per_layer": r.per_layer}

    say("lrc")
    out["lrc"] = lrc_metrics([e.numpy() for e in trace.experts], trace.num_experts, 16).to_dict()
    out["lrc"].pop("per_layer")

    usage = [torch.bincount(e.reshape(-1), minlength=trace.num_experts) for e in trace.experts]
    hidden, dim = int(model.config.hidden_size), int(model.config.intermediate_size)
    fp32 = ExpertCodec(hidden, dim, 32).nbytes
    out["quant"] = {}
    for scheme in QUANT_SCHEMES:
        say(f"perplexity with {scheme} experts")
        spec = QUANT_SCHEMES[scheme]
        ppl = _quantized_perplexity(model, ids, scheme, usage, top_k)
        out["quant"][scheme] = {
            "ppl": round(ppl, 3),
            "bytes_per_expert_vs_fp32": round(ExpertCodec(hidden, dim, spec.cached_bits).nbytes / fp32, 4),
            "cold_bytes_vs_fp32": round(ExpertCodec(hidden, dim, spec.cold_bits).nbytes / fp32, 4),
        }
    base = out["quant"]["none"]["ppl"]
    for v in out["quant"].values():
        v["ppl_delta_vs_fp32"] = round(v["ppl"] / base - 1, 4)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
