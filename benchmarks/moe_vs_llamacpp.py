"""The MoE engine beside llama.cpp on the same weights: all resident, and under one memory cap.

    python benchmarks/moe_vs_llamacpp.py --json [--testbed olmoe-real] [--tokens 8] [--rounds 3]
                                         [--cap-gb 4] [--threads 2]

The testbed (inference/moe/testbed.py, 8 GB of OLMoE-shaped bf16 experts) is written as an
OLMoE GGUF with the same weights bit for bit (inference/moe/gguf_export.py), so llama.cpp and
the engine compute the same model; both route with the testbed's own routers here (routing
`model`: llama.cpp cannot replay a trace), greedy decoding from the same prompt ids.
- all resident: llama.cpp with the whole file loaded (no mmap) vs the engine's `resident`
  policy (every expert in RAM), same thread count;
- under one memory cap (a cgroup; root with cgroup v1 or v2 only, skipped elsewhere):
  llama.cpp mmap'ing the file (what it does by default when a model exceeds memory: the page
  cache holds what fits, the rest is re-read on demand) vs the engine with a 2x fast tier,
  its slow tier on disk read with O_DIRECT.
Each measurement runs in its own child process (so one's memory never counts for another);
speeds are medians over the rounds. Prints one JSON object (benchmarks/_common.py layout).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from benchmarks._common import emit, parser, ratio, target  # noqa: E402


def _say(msg: str) -> None:
    print(f"moe_vs_llamacpp: {msg}", file=sys.stderr, flush=True)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# -- children ----------------------------------------------------------------------------
def child_llama(
    gguf: str, tokens: int, prompt: list[int], rounds: int, threads: int, mmap: bool
) -> dict:
    import numpy as np
    from llama_cpp import Llama

    t0 = time.perf_counter()
    llm = Llama(
        model_path=gguf,
        n_ctx=len(prompt) + tokens + 8,
        n_threads=threads,
        n_threads_batch=threads,
        use_mmap=mmap,
        verbose=False,
    )
    load_s = time.perf_counter() - t0
    speeds = []
    for _ in range(rounds):
        llm.reset()
        llm.eval(prompt)
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        t1 = time.perf_counter()
        for _ in range(tokens - 1):
            llm.eval([tok])
            tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        speeds.append((tokens - 1) / (time.perf_counter() - t1))
    return {
        "decode_tok_s": statistics.median(speeds),
        "decode_tok_s_rounds": [round(s, 3) for s in speeds],
        "load_s": round(load_s, 1),
        "peak_rss_mb": _peak_rss_mb(),
        "mmap": mmap,
    }


def child_memex(
    testbed: str,
    root: str,
    tokens: int,
    prompt: list[int],
    rounds: int,
    threads: int,
    policies: list[str],
    budget: str,
    routing: str,
) -> dict:
    from inference.moe.engine import configure_threads
    from inference.moe.tools.bench import run_bench
    from inference.moe.tools.testbed import load_testbed

    configure_threads(threads)
    kind, _, trace = routing.partition(":")
    loaded = load_testbed(Path(root) / testbed, routing=kind, trace=Path(trace) if trace else None)
    try:
        loaded.slow.verify_all()  # checksums before timing, as `memex moe bench --testbed`
        res = run_bench(
            loaded,
            budget=budget,
            tokens=tokens,
            policies=policies,
            prompt=prompt,
            reference="none",
            rounds=rounds,
            progress=_say,
        )
    finally:
        loaded.close()
    keep = (
        "decode_tok_s",
        "decode_tok_s_rounds",
        "hit_rate",
        "bytes_moved_per_token",
        "peak_rss_mb",
        "prediction_accuracy",
    )
    return {name: {k: m[k] for k in keep if k in m} for name, m in res["policies"].items()}


# -- memory cgroups ----------------------------------------------------------------------
def cgroup_for(cap_bytes: int) -> Path | None:
    """A fresh memory cgroup capped at `cap_bytes` (v2 unified or v1), or None."""
    name = f"memex-moe-bench-{os.getpid()}"
    candidates = []
    for base in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        controllers = base / "cgroup.controllers"
        if controllers.is_file() and "memory" in controllers.read_text().split():
            candidates.append((base, "memory.max"))
    v1 = Path("/sys/fs/cgroup/memory")
    if (v1 / "memory.limit_in_bytes").is_file():
        candidates.append((v1, "memory.limit_in_bytes"))
    for base, limit in candidates:
        group = base / name
        try:
            group.mkdir(exist_ok=True)
            (group / limit).write_text(str(cap_bytes))
        except OSError:
            try:
                group.rmdir()
            except OSError:
                pass
            continue
        swap = group / "memory.memsw.limit_in_bytes"  # v1: no swapping around the cap either
        if swap.exists():
            try:
                swap.write_text(str(cap_bytes))
            except OSError:
                pass
        return group
    return None


def _run_child(args: list[str], group: Path | None, timeout: int) -> dict:
    def enter() -> None:  # in the child, before exec: join the capped group
        if group is not None:
            (group / "cgroup.procs").write_text(str(os.getpid()))

    _say("child: " + " ".join(args[:3]) + (f" (capped by {group.name})" if group else ""))
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=enter,
    )
    if proc.returncode != 0:
        return {
            "error": (proc.stderr or "").strip().splitlines()[-1:] or [f"exit {proc.returncode}"],
            "returncode": proc.returncode,
        }
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ap = parser(__doc__)
    ap.add_argument("--testbed", default="olmoe-real")
    ap.add_argument("--root", default=None, help="testbed folder root (default: settings)")
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--prompt-tokens", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cap-gb", type=float, default=4.0, help="memory cap of the capped runs")
    ap.add_argument("--budget", default="2x")
    ap.add_argument("--capped-policies", default="lru,fate_plus")
    ap.add_argument("--skip-resident", action="store_true")
    ap.add_argument("--child", default=None, help=argparse_hidden())
    ap.add_argument("--spec", default="{}", help=argparse_hidden())
    args = ap.parse_args(argv)
    if args.child:
        spec = json.loads(args.spec)
        out = child_llama(**spec) if args.child == "llama" else child_memex(**spec)
        print(json.dumps(out))
        return out

    from app.commands.moe import testbed_root
    from app.settings import load_settings
    from inference.moe.tools.gguf_export import write_testbed_gguf
    from inference.moe.tools.testbed import ensure_testbed

    root = Path(args.root) if args.root else testbed_root(load_settings())
    folder = ensure_testbed(args.testbed, root, _say)
    gguf = write_testbed_gguf(folder)
    meta = json.loads((folder / "testbed.json").read_text())
    prompt = [(17 + 31 * i) % meta["shape"]["vocab"] for i in range(args.prompt_tokens)]
    common = {
        "tokens": args.tokens,
        "prompt": prompt,
        "rounds": args.rounds,
        "threads": args.threads,
    }
    mem = {
        **common,
        "testbed": args.testbed,
        "root": str(root),
        "budget": args.budget,
        "routing": "model",
    }
    results: dict = {
        "testbed": meta,
        "gguf_bytes": gguf.stat().st_size,
        "threads": args.threads,
        "decode_tokens": args.tokens,
        "rounds": args.rounds,
        "routing": "model",
    }
    ratios: dict = {}
    targets: dict = {}
    limit = 3600
    if not args.skip_resident:
        llama = _run_child(
            [
                "--child",
                "llama",
                "--spec",
                json.dumps({**common, "gguf": str(gguf), "mmap": False}),
            ],
            None,
            limit,
        )
        memex = _run_child(
            ["--child", "memex", "--spec", json.dumps({**mem, "policies": ["resident"]})],
            None,
            limit,
        )
        results["resident"] = {"llamacpp": llama, "memex": memex.get("resident", memex)}
        r = ratio(results["resident"]["memex"].get("decode_tok_s"), llama.get("decode_tok_s"))
        ratios["memex_resident_vs_llamacpp_resident"] = r
        targets["memex_resident_vs_llamacpp_resident"] = target(r, ">=", 0.8)
    cap = int(args.cap_gb * 2**30)
    group = cgroup_for(cap) if os.geteuid() == 0 else None
    if group is None:
        results["capped"] = {
            "skipped": "no memory cgroup can be created here (needs root and "
            "cgroup v1/v2 with the memory controller)"
        }
    else:
        try:
            llama = _run_child(
                [
                    "--child",
                    "llama",
                    "--spec",
                    json.dumps({**common, "gguf": str(gguf), "mmap": True}),
                ],
                group,
                limit,
            )
            policies = [p for p in args.capped_policies.split(",") if p]
            memex = _run_child(
                ["--child", "memex", "--spec", json.dumps({**mem, "policies": policies})],
                group,
                limit,
            )
            results["capped"] = {"cap_gb": args.cap_gb, "llamacpp_mmap": llama, "memex": memex}
            for name in policies:
                r = ratio((memex.get(name) or {}).get("decode_tok_s"), llama.get("decode_tok_s"))
                ratios[f"memex_{name}_vs_llamacpp_mmap"] = r
            best = max(
                (v for k, v in ratios.items() if k.endswith("_vs_llamacpp_mmap") and v),
                default=None,
            )
            targets["capped_memex_vs_llamacpp_mmap"] = target(best, ">=", 2.0)
        finally:
            try:
                group.rmdir()
            except OSError:
                pass
    return emit("moe_vs_llamacpp", results, ratios, targets, as_json=args.json)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
