"""Inference benchmark: memex's llama.cpp backend vs raw llama-cpp-python, ask latency, cold start.

    python benchmarks/inference.py --json [--tokens 128] [--rounds 5] [--questions 10]

Prints one JSON object:
- decode: `memex_tok_s` (LlamaCppBackend.stream) vs `llama_cpp_tok_s`
  (Llama.create_chat_completion with stream=True on a second, identically configured Llama:
  same model, prompt, n_ctx, threads, greedy sampling) measured interleaved in one process;
  ratio `memex_vs_llama_cpp` = memex / raw, from the best run of each side
  (`median_memex_vs_llama_cpp` from the medians). Decode speed excludes prompt processing
  (first piece to last piece).
- ask: time to first token of `Runtime.ask_stream` on the evaluation persona, split into
  retrieval, prompt building and model first token (p50/p95 over the questions, warm).
- cold start: a fresh `memex ask` process, from process start to the first answer byte on stdout.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
# Run as a script, benchmarks/ comes first on sys.path and its memory.py would shadow the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
from benchmarks._common import emit, p50_p95, parser, ratio, target  # noqa: E402

PERSONA = ROOT / "tests" / "fixtures" / "persona"
PROMPT = "Write a long, detailed story about a dragon who learns to bake bread."


def _decode_rate(pieces: list[float]) -> float:
    """Tokens per second between the first and the last piece (prompt processing excluded)."""
    if len(pieces) < 2:
        return 0.0
    return (len(pieces) - 1) / (pieces[-1] - pieces[0])


def bench_decode(tokens: int, rounds: int, n_ctx: int) -> dict[str, Any]:
    from inference.base import BackendConfig, ChatMessage, GenerationParams
    from inference.llamacpp import LlamaCppBackend, load_llama

    memex = LlamaCppBackend(BackendConfig(n_ctx=n_ctx))
    raw = load_llama(memex.model_path, n_ctx=n_ctx, threads=memex.threads)
    msgs = [ChatMessage("user", PROMPT)]
    params = GenerationParams(max_tokens=tokens, temperature=0.0)

    def run_memex() -> list[float]:
        stamps = []
        for _ in memex.stream(msgs, params):
            stamps.append(time.perf_counter())
        return stamps

    def run_raw() -> list[float]:
        stamps = []
        for chunk in raw.create_chat_completion(
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            max_tokens=tokens,
            temperature=0.0,
            top_p=1.0,
            seed=0,
        ):
            if chunk["choices"][0]["delta"].get("content"):  # type: ignore[index]
                stamps.append(time.perf_counter())
        return stamps

    run_memex(), run_raw()  # warm-up: page in weights, compile the chat template
    memex_rates, raw_rates, n_tokens = [], [], 0
    for r in range(rounds):
        # Alternate the order so drift on a shared machine hits both sides alike.
        order = (run_memex, run_raw) if r % 2 == 0 else (run_raw, run_memex)
        for fn in order:
            stamps = fn()
            (memex_rates if fn is run_memex else raw_rates).append(_decode_rate(stamps))
            n_tokens = len(stamps)
    memex.close()
    raw.close()
    # Best-of-N is the headline: on a shared machine interference only ever slows a run down,
    # so the fastest run of each side is the closest to its true speed. Medians are reported too.
    m, b = max(memex_rates), max(raw_rates)
    mm, bm = statistics.median(memex_rates), statistics.median(raw_rates)
    return {
        "memex_tok_s": round(m, 2),
        "llama_cpp_tok_s": round(b, 2),
        "median_memex_tok_s": round(mm, 2),
        "median_llama_cpp_tok_s": round(bm, 2),
        "decode_tokens": n_tokens,
        "rounds": rounds,
        "threads": memex.threads,
        "memex_tok_s_all": [round(x, 1) for x in memex_rates],
        "llama_cpp_tok_s_all": [round(x, 1) for x in raw_rates],
    }


def _persona_home(home: Path) -> None:
    from app.runtime import Runtime
    from app.settings import load_settings

    rt = Runtime(load_settings(home=home, inbox_use_model=False))
    for line in (PERSONA / "notes.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        rt.remember(
            d["text"], source=d["source"], at=datetime.fromisoformat(d["at"]), kind=d["kind"]
        )
    rt.close()


def bench_ask(home: Path, n_questions: int) -> dict[str, Any]:
    from app.runtime import Runtime
    from app.settings import load_settings

    rt = Runtime(load_settings(home=home, max_answer_tokens=8))
    questions = [
        q["q"] for q in json.loads((PERSONA / "questions.json").read_text(encoding="utf-8"))
    ]
    rt.ask(questions[0])  # warm: embedder, vector index, model
    retrieval, build, first, overhead = [], [], [], []
    for q in questions[:n_questions]:
        t0 = time.perf_counter()
        stream = rt.ask_stream(q)
        t1 = time.perf_counter()
        it = iter(stream)
        next(it, None)
        t2 = time.perf_counter()
        for _ in it:
            pass
        retrieval.append(stream.prepared.retrieval_ms)
        build.append(stream.prepared.build_ms)
        overhead.append((t1 - t0) * 1000.0)
        first.append((t2 - t1) * 1000.0)
    rt.close()

    return {
        "questions": len(retrieval),
        "retrieval_ms": p50_p95(retrieval),
        "prompt_build_ms": p50_p95(build),
        "retrieval_plus_build_ms": p50_p95(overhead),
        "first_token_ms": p50_p95(first),
        "ttft_ms": p50_p95([a + b for a, b in zip(overhead, first)]),
    }


def bench_cold_start(home: Path) -> dict[str, object]:
    """Process start -> first answer byte of `memex ask` (embedder + model load included)."""
    env = dict(os.environ, MEMEX_HOME=str(home), MEMEX_MAX_ANSWER_TOKENS="8")
    cmd = [
        sys.executable,
        "-c",
        "from app.cli import main; main()",
        "ask",
        "What is my cat's name?",
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    first_byte = proc.stdout.read(1)
    t1 = time.perf_counter()
    proc.stdout.read()
    proc.wait(timeout=300)
    t2 = time.perf_counter()
    return {
        "cold_start_first_token_s": round(t1 - t0, 3),
        "cold_start_total_s": round(t2 - t0, 3),
        "cold_start_ok": bool(first_byte) and proc.returncode == 0,
    }


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--questions", type=int, default=10)
    ap.add_argument("--n-ctx", type=int, default=2048)
    args = ap.parse_args()

    decode = bench_decode(args.tokens, args.rounds, args.n_ctx)
    with tempfile.TemporaryDirectory(prefix="memex-bench-") as tmp:
        home = Path(tmp)
        _persona_home(home)
        ask = bench_ask(home, args.questions)
        cold = bench_cold_start(home)
    ratios = {
        "memex_vs_llama_cpp": ratio(decode["memex_tok_s"], decode["llama_cpp_tok_s"], 4),
        "median_memex_vs_llama_cpp": ratio(
            decode["median_memex_tok_s"], decode["median_llama_cpp_tok_s"], 4
        ),
    }
    targets = {
        "memex_vs_llama_cpp": target(ratios["memex_vs_llama_cpp"], ">=", 0.97),
        "retrieval_plus_build_p50_ms": target(ask["retrieval_plus_build_ms"]["p50"], "<=", 60),
    }
    results = {
        "model": "SmolLM2-135M-Instruct Q4_1 (bundled)",
        "decode": decode,
        "ask": ask,
        "cold_start": cold,
    }
    emit("inference", results, ratios, targets, as_json=args.json)


if __name__ == "__main__":
    main()
