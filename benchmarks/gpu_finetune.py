"""GPU check for `--offload cpu` (ZeRO-Offload for LoRA): peak GPU memory and throughput vs `none`.

One prepared script for a machine with CUDA; without CUDA it prints {"skipped": ...} and
exits 0. Each policy trains in its own child process on the bundled SmolLM2-135M (from its
GGUF), persona dataset, packed batch x seq-len rows; rounds are interleaved.
Target (issue 8): cpu peak GPU memory <= 0.5x none at >= 0.8x its throughput.
Usage: python benchmarks/gpu_finetune.py [--steps 6] [--batch 8] [--seq-len 1024] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA device; run this on a GPU machine"}))
        return
    from benchmarks.finetune import persona, train_child
    from finetune.data import synthesize, write_jsonl
    from finetune.model import prepare_base
    from inference.models import bundled_path

    work = Path(tempfile.mkdtemp(prefix="memex-gpu-ft-"))
    base = bundled_path()
    mems, prof, _ = persona()
    dataset = write_jsonl(synthesize(mems, prof, heldout_memory_fraction=0.0), work / "dataset.jsonl")
    # Long rows: repeat the dataset so every packed row is full.
    lines = dataset.read_text().splitlines()
    dataset.write_text("\n".join(lines * 4) + "\n")
    prepare_base(str(base), work / "cache")
    runs: dict[str, list[dict]] = {"none": [], "cpu": []}
    log = lambda e: print(json.dumps(e), file=sys.stderr, flush=True)
    for r in range(args.rounds):
        for p in ("none", "cpu"):
            t = time.perf_counter()
            res, _, steady = train_child(base, dataset, work / f"{p}-{r}", work / "cache", p, args.steps,
                                         args.batch, args.seq_len, log)
            runs[p].append({"peak_gpu_mb": res.peak_gpu_mb, "train_tok_s": steady or res.train_tok_s,
                            "peak_rss_mb": res.peak_rss_mb, "loss_last": res.loss_last,
                            "wall_s": round(time.perf_counter() - t, 1)})
    best = {p: {"peak_gpu_mb": min(x["peak_gpu_mb"] for x in v), "train_tok_s": max(x["train_tok_s"] for x in v)}
            for p, v in runs.items()}
    gpu_ratio = best["cpu"]["peak_gpu_mb"] / best["none"]["peak_gpu_mb"]
    speed_ratio = best["cpu"]["train_tok_s"] / best["none"]["train_tok_s"]
    print(json.dumps({
        "device": torch.cuda.get_device_name(0), "batch": args.batch, "seq_len": args.seq_len,
        "runs": runs, "best": best,
        "cpu_vs_none": {"peak_gpu_ratio": round(gpu_ratio, 3), "throughput_ratio": round(speed_ratio, 3)},
        "targets": {"gpu_mem_le_0.5x": gpu_ratio <= 0.5, "throughput_ge_0.8x": speed_ratio >= 0.8},
    }))


if __name__ == "__main__":
    main()
