"""Expert prediction, routing consistency and quantized experts on the MoEfied testbed.

Prints one JSON object:
- "predictors": offline accuracy of prev_token / fate / fate_linear at widths k and k+1, and of
  fate_plus and fate at 2k (the width the fate_plus policy uses at a 2x budget), on a routing
  trace of held-out text (the fitted maps come from training text only);
- "lrc": SRP and SCH (1x/2x/4x) of the same trace;
- "quant": held-out perplexity with experts stored as none / int8 / int4 / fate (fate: the 2k
  most used experts of each layer INT4, the others INT2 -- the steady state of a 2x cache),
  packed and unpacked by the engine's own `ExpertCodec` (so the weights are exactly what the
  engine computes with), and each scheme's bytes per expert relative to fp32.

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

    from inference.moe.storage.quant import get_scheme
    from inference.moe.tools.moefy import perplexity

    spec = get_scheme(scheme)
    saved = []
    with torch.no_grad():
        for i, layer in enumerate(model.model.layers):
            experts = layer.mlp.experts
            saved.append(
                (experts.gate_up_proj.detach().clone(), experts.down_proj.detach().clone())
            )
            hot = set(torch.argsort(usage[i], descending=True)[: 2 * top_k].tolist())
            dim, hidden = experts.down_proj.shape[2], experts.down_proj.shape[1]
            for e in range(experts.gate_up_proj.shape[0]):
                codec = spec.codec(hidden, dim, cold=e not in hot)
                gu, dn = experts.gate_up_proj[e], experts.down_proj[e]
                gate_up, down = codec.decode(codec.encode(gu[:dim], gu[dim:], dn))
                experts.gate_up_proj[e] = gate_up
                experts.down_proj[e] = down
    try:
        return perplexity(model, ids)
    finally:
        with torch.no_grad():
            for layer, (gu, dn) in zip(model.model.layers, saved):
                layer.mlp.experts.gate_up_proj.copy_(gu)
                layer.mlp.experts.down_proj.copy_(dn)


def _expert_output_error(model, trace, codec) -> float:  # type: ignore[no-untyped-def]
    """Mean relative L2 error of expert outputs on real gate inputs (a few layers and the
    experts they used): a stable companion to perplexity, which this heavily degraded
    testbed turns chaotic (any small perturbation moves it by several percent)."""
    import torch
    import torch.nn.functional as F

    errs = []
    layers = model.model.layers
    for li in sorted({len(layers) // 10, len(layers) // 3, len(layers) // 2, len(layers) - 2}):
        experts = layers[li].mlp.experts
        dim = experts.down_proj.shape[2]
        x, used = trace.gate_inputs[li][:256], trace.experts[li][:256]
        for e in torch.unique(used)[:12].tolist():
            xe = x[(used == e).any(dim=1)]  # [n, H] tokens routed to e
            gu, dn = experts.gate_up_proj[e].detach(), experts.down_proj[e].detach()
            qgu, qdn = codec.decode(codec.encode(gu[:dim], gu[dim:], dn))

            def mlp(x_, w1, w2):  # type: ignore[no-untyped-def]
                g, u = F.linear(x_, w1).chunk(2, dim=-1)
                return F.linear(F.silu(g) * u, w2)

            y = mlp(xe, gu, dn)
            errs.append(float((mlp(xe, qgu, qdn) - y).norm() / y.norm().clamp_min(1e-12)))
    return round(sum(errs) / max(len(errs), 1), 4)


def main() -> None:
    import torch

    from inference.moe.predictors.predict import evaluate, fitted_predictor
    from inference.moe.predictors.routing_trace import load_reference, record_trace
    from inference.moe.storage.quant import QUANT_SCHEMES, ExpertCodec
    from inference.moe.tools.lrc import lrc_metrics
    from inference.moe.tools.moefy import ensure_moefied, token_batch

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="")
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument(
        "--json", action="store_true", help="print the JSON object on one line (default: indented)"
    )
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
    out: dict = {
        "model": str(folder),
        "tokens": trace.tokens,
        "layers": trace.layers,
        "experts": trace.num_experts,
        "top_k": top_k,
        "predictors": {},
    }

    say("predictors")
    for extra in (0, 1, top_k):
        for name in ("prev_token", "fate", "fate_linear", "fate_plus"):
            if (
                (name == "prev_token" and extra)
                or (name == "fate_plus" and extra != top_k)
                or (name in ("prev_token", "fate_linear") and extra == top_k)
            ):
                continue
            pred = fitted_predictor(name, folder, trace.routers, top_k, extra)
            r = evaluate(pred, trace)
            out["predictors"][f"{name}@{r.width}"] = {
                "accuracy": r.accuracy,
                "per_layer": r.per_layer,
            }

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
            "bytes_per_expert_vs_fp32": round(spec.codec(hidden, dim).nbytes / fp32, 4),
            "cold_bytes_vs_fp32": round(spec.codec(hidden, dim, cold=True).nbytes / fp32, 4),
            "expert_output_rel_err": _expert_output_error(model, trace, spec.codec(hidden, dim)),
            "cold_expert_output_rel_err": _expert_output_error(
                model, trace, spec.codec(hidden, dim, cold=True)
            ),
        }
    base = out["quant"]["none"]["ppl"]
    for v in out["quant"].values():
        v["ppl_delta_vs_fp32"] = round(v["ppl"] / base - 1, 4)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
