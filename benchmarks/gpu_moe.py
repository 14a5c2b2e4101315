"""One prepared GPU benchmark: an OLMoE-shaped random-weight model at real sizes.

    python benchmarks/gpu_moe.py            # 16 layers x 64 experts, H 2048, I 1024, top-8, bf16
    python benchmarks/gpu_moe.py --device cpu --layers 2 --experts 8 --hidden 64 --expert-dim 32 \
        --top-k 2 --vocab 256 --heads 4 --kv-heads 4 --tokens 4      # CPU smoke test

Slow tier: pinned CPU memory; fast tier: a GPU budget (several budgets in one run).
Weights are random (routing has no real structure: use it for transfer/compute ratios,
never to judge prediction). Exactness is measured against the `resident` policy on the
same weights (no transformers reference at this size). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(args: argparse.Namespace, quant: str = "none"):  # -> LoadedModel
    import torch

    from inference.moe.config import MoEConfig
    from inference.moe.engine import LoadedModel, resolve_device
    from inference.moe.storage.quant import get_scheme
    from inference.moe.storage.store import MemorySlowTier, expert_layout
    from inference.moe.weights import DenseWeights, LayerWeights

    device = resolve_device(args.device)
    dtype = getattr(torch, args.dtype)
    head_dim = args.hidden // args.heads
    cfg = MoEConfig(
        family="olmoe",
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        num_layers=args.layers,
        num_heads=args.heads,
        num_kv_heads=args.kv_heads,
        head_dim=head_dim,
        num_experts=args.experts,
        top_k=args.top_k,
        expert_dim=args.expert_dim,
        norm_topk_prob=False,
        rms_eps=1e-5,
        moe_layers=tuple(range(args.layers)),
        max_position=4096,
        name="olmoe-shaped-random",
    )
    g = torch.Generator(device=device).manual_seed(0)

    def rnd(*shape: int, std: float = 0.02) -> torch.Tensor:
        return (torch.randn(*shape, generator=g, device=device, dtype=torch.float32) * std).to(
            dtype
        )

    h, d = args.hidden, head_dim
    layers = [
        LayerWeights(
            in_norm=torch.ones(h, device=device, dtype=dtype),
            post_norm=torch.ones(h, device=device, dtype=dtype),
            q=rnd(args.heads * d, h),
            k=rnd(args.kv_heads * d, h),
            v=rnd(args.kv_heads * d, h),
            o=rnd(h, args.heads * d),
            q_norm=torch.ones(args.heads * d, device=device, dtype=dtype),
            k_norm=torch.ones((h // args.heads) * args.kv_heads, device=device, dtype=dtype),
            router=rnd(args.experts, h, std=0.5),
        )
        for _ in range(args.layers)
    ]
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.float) / d))
    dense = DenseWeights(
        embed=rnd(args.vocab, h, std=1.0),
        norm=torch.ones(h, device=device, dtype=dtype),
        lm_head=rnd(args.vocab, h),
        layers=layers,
        inv_freq=inv_freq.to(device),
    )
    scheme = get_scheme(quant)
    if scheme.cold_bits != scheme.cached_bits:
        raise SystemExit(f"--quant {quant}: only single-format schemes (none, int8, int4) here")
    bits = 0 if scheme.cached_bits == 32 else scheme.cached_bits
    layout = expert_layout(cfg, dtype, bits)
    codec = layout.codec() if bits else None
    i_, h_ = cfg.expert_dim, cfg.hidden_size
    pin = device != "cpu"
    data = torch.zeros((layout.count, layout.blob_bytes), dtype=torch.uint8, pin_memory=pin)
    for i in range(layout.count):  # made (and packed) where it is fast, then parked in pinned RAM
        w = rnd(cfg.expert_numel)
        if codec is not None:
            gate, up, down = (
                w[: i_ * h_].view(i_, h_),
                w[i_ * h_ : 2 * i_ * h_].view(i_, h_),
                w[2 * i_ * h_ :].view(h_, i_),
            )
            w = codec.encode(gate, up, down)
        data[i, : layout.nbytes].copy_(w.view(torch.uint8).reshape(-1))
    return LoadedModel(cfg, dense, MemorySlowTier(layout, data), device, dtype, quant=quant)


def summarize(policies: dict) -> dict:
    """The issue's ratios per policy: decode vs lru / on_demand / resident, hits, accuracy."""
    speed = {name: m.get("decode_tok_s") or 0.0 for name, m in policies.items()}
    out = {}
    for name, m in policies.items():
        row = {
            "decode_tok_s": round(speed[name], 2),
            "hit_rate": m.get("hit_rate"),
            "prediction_accuracy": m.get("prediction_accuracy"),
            "stall_ms_per_token": m.get("stall_ms_per_token"),
        }
        for ref in ("lru", "on_demand", "resident"):
            if speed.get(ref):
                row[f"vs_{ref}"] = round(speed[name] / speed[ref], 3)
        out[name] = row
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description="OLMoE-shaped random-weight MoE offloading benchmark")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--expert-dim", type=int, default=1024)
    ap.add_argument("--top-k", type=int, default=8)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--kv-heads", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=50304)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--budgets", default="1x,2x,4x")
    ap.add_argument("--policies", default="on_demand,lru,fate,fate_plus,resident")
    ap.add_argument("--quants", default="none", help="comma list of none|int8|int4, one run each")
    ap.add_argument(
        "--computes",
        default="auto",
        help="comma list of expert compute paths (auto|fused|loop), one run each",
    )
    ap.add_argument(
        "--json", action="store_true", help="print the JSON object on one line (default: indented)"
    )
    args = ap.parse_args(argv)

    from inference.moe.tools.bench import run_bench

    out: dict = {"args": vars(args), "runs": {}, "summary": {}}
    prompt = [(17 + 31 * i) % args.vocab for i in range(args.prompt_tokens)]
    policies = [p for p in args.policies.split(",") if p]
    for quant in [q for q in args.quants.split(",") if q]:
        t0 = time.perf_counter()
        loaded = build(args, quant)
        out[f"build_s_{quant}"] = round(time.perf_counter() - t0, 1)
        if loaded.device != "cpu":
            import torch

            out["gpu"] = torch.cuda.get_device_name()
        try:
            for compute, budget in [
                (c, b) for c in args.computes.split(",") if c for b in args.budgets.split(",")
            ]:
                loaded.compute = compute
                key = f"{quant}/{budget}" if compute == "auto" else f"{quant}/{compute}/{budget}"
                res = run_bench(
                    loaded,
                    budget=budget,
                    tokens=args.tokens,
                    policies=policies,
                    prompt=prompt,
                    reference="resident",
                    progress=lambda m, k=key: print(f"[{k}] {m}", file=sys.stderr),
                )
                if loaded.device != "cpu":
                    import torch

                    res["gpu_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
                out["runs"][key] = res
                out["summary"][key] = summarize(res["policies"])
                print(json.dumps({key: out["summary"][key]}), file=sys.stderr, flush=True)
        finally:
            loaded.close()
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
