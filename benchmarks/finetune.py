"""Personal fine-tuning benchmark on the bundled SmolLM2-135M (its GGUF), persona "Jonas Weber".

Same run, same settings, ratios against the baseline:
- memory/throughput: `--offload disk` (and `cpu` when CUDA is present) vs `none`, each in its
  own training child (peak RSS is per process), batch x seq-len packed rows;
- QA: closed-book answers to the persona's held-out questions in llama.cpp, base vs adapter,
  and abstention on never-remembered questions;
- export fidelity: torch (peft) vs llama.cpp (GGUF LoRA) greedy token agreement, 32 tokens, on an
  F32 copy of the base (the export alone) and on the served Q4_1 base (plus llama.cpp's rounding);
- serving: chat decode speed of base, base + runtime LoRA, and the merged re-quantized model.
Prints one JSON object (benchmarks/_common.py's layout); ratios grouped by figure, each
`<variant>_vs_<baseline>`: peak_rss / train_tok_s {disk_vs_none, cpu_vs_none}, decode_tok_s
{lora_vs_base, merged_auto_vs_base, merged_same_vs_base}.
Usage: python benchmarks/finetune.py --json [--qa-steps 100] [--mem-steps 1] [--seq-len 512]
                                     [--work DIR --reuse]
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
# Run as a script, benchmarks/ comes first on sys.path and its memory.py would shadow the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
from benchmarks._common import emit, parser, ratio, target  # noqa: E402

PERSONA = ROOT / "tests" / "fixtures" / "persona"


def persona():
    from finetune import Example, MemoryRecord, ProfileRecord

    notes = [
        json.loads(x)
        for x in (PERSONA / "notes.jsonl").read_text(encoding="utf-8").splitlines()
        if x.strip()
    ]
    questions = json.loads((PERSONA / "questions.json").read_text(encoding="utf-8"))
    never = json.loads((PERSONA / "never_remembered.json").read_text(encoding="utf-8"))
    profile = json.loads((PERSONA / "profile.json").read_text(encoding="utf-8"))["current"]
    # the store marks supersession; here the persona's "stale" lists say which note replaced which
    newer = {s: q["expect"][0] for q in questions for s in q.get("stale", [])}
    mems = [
        MemoryRecord(
            id=n["key"],
            text=n["text"],
            when=datetime.fromisoformat(n["at"]),
            superseded_by=newer.get(n["key"]),
        )
        for n in notes
    ]
    prof = [ProfileRecord(k, v) for k, v in profile.items()]
    evals = [
        Example(
            id=f"q{i}",
            question=q["q"],
            answer="",
            split="heldout_paraphrase",
            kind="fact",
            answer_keys=(q["answer_contains"],),
        )
        for i, q in enumerate(questions)
    ]
    evals += [
        Example(id=f"n{i}", question=q, answer="", split="abstain_eval", kind="abstain")
        for i, q in enumerate(never)
    ]
    return mems, prof, evals


def train_child(
    base,
    dataset,
    work,
    cache,
    offload,
    steps,
    batch,
    seq_len,
    log,
    checkpoint_every=10_000,
    lora_kind="auto",
    **extra,
):
    from finetune import TrainConfig
    from finetune.runner import run_training

    cfg = TrainConfig(
        base_model=str(base),
        dataset=str(dataset),
        work_dir=str(work),
        cache_dir=str(cache),
        offload=offload,
        steps=steps,
        batch=batch,
        seq_len=seq_len,
        checkpoint_every=checkpoint_every,
        lora_kind=lora_kind,
        **extra,
    )
    t = time.perf_counter()
    seen: list[tuple[float, int]] = []  # (time, tokens so far) at each step

    def on_event(e: dict) -> None:
        if e.get("phase") == "train":
            seen.append((time.perf_counter(), int(e.get("tokens", 0))))
        if e.get("phase") in ("train", "note", "error"):
            log(e)

    res = run_training(cfg, on_event)
    return res, time.perf_counter() - t, steady_tok_s(seen)


def steady_tok_s(seen: list[tuple[float, int]]) -> float | None:
    """Tokens/s after the first step: step 1 pays one-time costs (allocator, kernels, page-ins)."""
    if len(seen) < 2:
        return None
    (t1, n1), (t2, n2) = seen[0], seen[-1]
    return round((n2 - n1) / (t2 - t1), 1) if t2 > t1 else None


def saved(work: Path, name: str, reuse: bool):
    path = work / f"{name}.json"
    return json.loads(path.read_text()) if reuse and path.exists() else None


def save(work: Path, name: str, data) -> None:
    (work / f"{name}.json").write_text(json.dumps(data))


def decode_speeds(load, runs: dict, prompts, n_tokens=64, rounds=8) -> tuple[dict, dict]:
    """Decode tokens/s of each (model, lora) in `runs`: the prompt is evaluated untimed, then the
    same n_tokens (a fixed passage) are fed one at a time, so every model does the same work
    whatever it would answer (the adapter answers "tell me a story" with a short abstention,
    and a short answer is mostly prompt time). All models are loaded at once and timed in turns,
    the order reversed every round; each round's ratio to the first run compares neighbours in
    time, which cancels the drift of a shared VM. Returns (median tok/s, median ratio)."""
    import statistics

    llms = {
        k: load(str(m), n_ctx=512, threads=0, lora_path=str(ad) if ad else None)
        for k, (m, ad) in runs.items()
    }
    try:
        some = next(iter(llms.values()))
        passage = list(some.tokenize(DECODE_PASSAGE.encode(), add_bos=False))[:n_tokens]
        encoded = [list(some.tokenize(p.encode(), add_bos=False, special=True)) for p in prompts]
        tok_s: dict[str, list[float]] = {k: [] for k in runs}
        for r in range(rounds):
            order = list(llms.items()) if r % 2 == 0 else list(llms.items())[::-1]
            for ids in encoded:
                for k, llm in order:
                    llm.reset()
                    llm.eval(ids)
                    t = time.perf_counter()
                    for tok in passage:
                        llm.eval([tok])
                    tok_s[k].append(len(passage) / (time.perf_counter() - t))
    finally:
        for llm in llms.values():
            llm.close()
    first = next(iter(runs))
    med = {k: statistics.median(v) for k, v in tok_s.items()}
    rel = {k: statistics.median(x / b for x, b in zip(v, tok_s[first])) for k, v in tok_s.items()}
    return med, rel


DECODE_PASSAGE = (
    "The sea was calm that morning, and the old fishing boat left the harbour before sunrise. "
    "Gulls followed it past the lighthouse, where the water turned from green to a deep, "
    "cold blue. By noon the nets were full, and the crew sang as they pulled them in, one "
    "heavy rope at a time."
)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--qa-steps", type=int, default=100, help="~5 epochs of the persona's dataset")
    ap.add_argument("--qa-seq-len", type=int, default=512)
    ap.add_argument(
        "--qa-offload", default="none", help="policies train alike; `none` is the fastest"
    )
    ap.add_argument(
        "--mem-steps", type=int, default=3, help="throughput counts the steps after the first"
    )
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=512, help="rows of the memory/throughput runs")
    ap.add_argument(
        "--lora-kind", default="auto", help="auto: block LoRA on the Q4_1 base (merges losslessly)"
    )
    ap.add_argument("--work", default="")
    ap.add_argument("--reuse", action="store_true", help="reuse finished phases saved in --work")
    args = ap.parse_args()

    import torch

    from finetune.data import synthesize, write_jsonl
    from finetune.evaluate import LlamaQA, qa_report, token_agreement, torch_greedy
    from finetune.merge import merge_lora
    from finetune.model import load_base, prepare_base
    from inference.llamacpp import load_llama
    from inference.models import bundled_path

    log = lambda e: print(json.dumps(e), file=sys.stderr, flush=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="memex-ft-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    base = bundled_path()
    cache = work / "cache"
    mems, prof, evals = persona()
    dataset = write_jsonl(
        synthesize(mems, prof, heldout_memory_fraction=0.0), work / "dataset.jsonl"
    )
    t0 = time.perf_counter()
    prepare_base(str(base), cache)  # the one-time GGUF -> torch conversion, outside the timings
    convert_s = time.perf_counter() - t0
    out: dict = {
        "model": base.name,
        "threads": torch.get_num_threads(),
        "convert_s": round(convert_s, 1),
        "batch": args.batch,
        "seq_len": args.seq_len,
    }

    # -- memory and throughput: each policy in its own child, interleaved -----------------
    policies = ["none", "disk"] + (["cpu"] if torch.cuda.is_available() else [])
    mem: dict[str, dict] = saved(work, "memory", args.reuse) or {}
    for p in policies:
        if p in mem:
            continue
        shutil.rmtree(
            work / f"mem-{p}", ignore_errors=True
        )  # a left-over checkpoint would resume at the end
        res, _, steady = train_child(
            base,
            dataset,
            work / f"mem-{p}",
            cache,
            p,
            args.mem_steps,
            args.batch,
            args.seq_len,
            log,
        )
        mem[p] = {
            "peak_rss_mb": res.peak_rss_mb,
            "peak_gpu_mb": res.peak_gpu_mb,
            "train_tok_s": steady or res.train_tok_s,
            "train_tok_s_with_first_step": res.train_tok_s,
            "loss_first": res.loss_first,
        }
        save(work, "memory", mem)
    out["memory"] = mem
    ratios: dict[str, dict] = {
        "peak_rss": {
            f"{p}_vs_none": ratio(mem[p]["peak_rss_mb"], mem["none"]["peak_rss_mb"])
            for p in policies
            if p != "none"
        },
        "train_tok_s": {
            f"{p}_vs_none": ratio(mem[p]["train_tok_s"], mem["none"]["train_tok_s"])
            for p in policies
            if p != "none"
        },
    }

    # -- QA training ---------------------------------------------------------------------
    qa_train = saved(work, "qa_train", args.reuse)
    if qa_train is None:
        res, train_s, _ = train_child(
            base,
            dataset,
            work / "qa",
            cache,
            args.qa_offload,
            args.qa_steps,
            args.batch,
            args.qa_seq_len,
            log,
            checkpoint_every=20,
            lora_kind=args.lora_kind,
        )
        qa_train = {
            "steps": res.steps,
            "lora_kind": args.lora_kind,
            "seq_len": args.qa_seq_len,
            "offload": args.qa_offload,
            "seconds": round(train_s, 1),
            "loss_first": res.loss_first,
            "loss_last": res.loss_last,
            "train_tok_s": res.train_tok_s,
            "adapter_gguf": res.adapter_gguf,
            "adapter_dir": res.adapter_dir,
        }
        save(work, "qa_train", qa_train)
    out["qa_train"] = qa_train
    lora = Path(qa_train["adapter_gguf"])
    out["adapter_mb"] = round(lora.stat().st_size / 2**20, 2)

    with (
        LlamaQA(base, loader=load_llama) as base_qa,
        LlamaQA(base, lora, loader=load_llama) as ad_qa,
    ):
        report = qa_report(evals, base_qa, ad_qa)
        # torch vs llama.cpp on the same prompt tokens, 32-token greedy answers
        prompts = [ad_qa.prompt_tokens(e.question) for e in evals[:12]]
        cpp = [ad_qa.greedy_tokens(p, 32) for p in prompts]
        cpp_base = [base_qa.greedy_tokens(p, 32) for p in prompts]
    out["qa"] = report.to_json()
    out["qa_gain_points"] = round(
        100 * (report.adapter["qa_accuracy"] - report.base["qa_accuracy"]), 1
    )
    log({"phase": "bench", "qa": out["qa"], "gain": out["qa_gain_points"]})

    from peft import PeftModel

    from finetune.evaluate import teacher_forced_agreement
    from finetune.gguf_io import float32_copy

    info = prepare_base(str(base), cache)
    model, tok = load_base(info, mmap=True)
    peft_model = PeftModel.from_pretrained(model, qa_train["adapter_dir"])
    ref = torch_greedy(peft_model, prompts, eos=tok.eos_token_id, n=32)
    # export fidelity: the GGUF LoRA in llama.cpp on an F32 copy of the base (the very weights
    # torch dequantized; no 8-bit activation rounding) against peft in torch
    f32 = work / "base-f32.gguf"
    if not f32.exists():
        float32_copy(base, f32)
    with LlamaQA(f32, lora, loader=load_llama) as f32_qa:
        cpp_f32 = [f32_qa.greedy_tokens(p, 32) for p in prompts]
    with peft_model.disable_adapter():
        ref_base = torch_greedy(peft_model, prompts, eos=tok.eos_token_id, n=32)
    # the served Q4_1 file: llama.cpp rounds activations to 8 bits for Q4_1/Q8_0 matmuls, which
    # moves logits by ~0.2 (base alone: see base_only_q4_1) whatever the adapter
    out["token_agreement"] = {
        "export_f32": round(token_agreement(cpp_f32, ref, 32), 4),
        "served_q4_1": round(token_agreement(cpp, ref, 32), 4),
        "served_q4_1_teacher_forced": round(
            teacher_forced_agreement(base, lora, peft_model, prompts, ref), 4
        ),
        "base_only_q4_1": round(token_agreement(cpp_base, ref_base, 32), 4),
    }
    log({"phase": "bench", "token_agreement": out["token_agreement"]})
    del peft_model, model

    # -- serving: runtime LoRA vs merged models (re-quantized to the base's type or Q8_0) -------
    merged: dict[str, Path] = {}
    out["merged"] = {}
    # auto: a block LoRA goes into the Q4_1 block offsets, a plain one makes adapted tensors Q8_0
    for qtype in ("auto", "same"):
        t = time.perf_counter()
        merged[qtype] = merge_lora(base, lora, work / f"merged-{qtype}.gguf", qtype=qtype)
        with LlamaQA(merged[qtype], loader=load_llama) as m_qa:
            m_report = qa_report(evals, m_qa, None).base
            m_tokens = [m_qa.greedy_tokens(p, 32) for p in prompts]
        out["merged"][qtype] = {
            "merge_s": round(time.perf_counter() - t, 1),
            "mb": round(merged[qtype].stat().st_size / 2**20, 1),
            "qa_accuracy": m_report["qa_accuracy"],
            "abstention": m_report["abstention_rate"],
            "token_agreement_torch": round(token_agreement(m_tokens, ref, 32), 4),
            "token_agreement_lora": round(token_agreement(m_tokens, cpp, 32), 4),
        }
        log({"phase": "bench", "merged": qtype, **out["merged"][qtype]})
    chat = [
        "<|im_start|>user\nTell me a long story about the sea.<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>user\nDescribe Lisbon in detail.<|im_end|>\n<|im_start|>assistant\n",
    ]
    runs = {
        "base": (base, None),
        "lora": (base, lora),
        "merged_auto": (merged["auto"], None),
        "merged_same": (merged["same"], None),
    }
    med, decode_ratio = decode_speeds(load_llama, runs, chat)
    out["decode_tok_s"] = {k: round(v, 1) for k, v in med.items()}
    ratios["decode_tok_s"] = {
        f"{k}_vs_base": round(v, 3) for k, v in decode_ratio.items() if k != "base"
    }
    # serve the fastest form that answers like the adapter itself (within one question)
    n = max(1, report.n)
    faithful = ["lora"] + [
        f"merged_{q}"
        for q, m in out["merged"].items()
        if m["qa_accuracy"] >= report.adapter["qa_accuracy"] - 1 / n
        and m["abstention"] >= report.abstention["base"]
    ]
    out["served"] = max(faithful, key=lambda k: decode_ratio[k])
    targets = {
        "peak_rss.disk_vs_none": target(ratios["peak_rss"]["disk_vs_none"], "<=", 0.35),
        "train_tok_s.disk_vs_none": target(ratios["train_tok_s"]["disk_vs_none"], ">=", 0.7),
        "qa_gain_points": target(out["qa_gain_points"], ">=", 50),
        "abstention_adapter_minus_base": target(
            round(report.abstention["adapter"] - report.abstention["base"], 4), ">=", 0
        ),
        "token_agreement_export_f32": target(out["token_agreement"]["export_f32"], ">=", 0.99),
        f"decode_tok_s.{out['served']}_vs_base": target(
            ratios["decode_tok_s"][f"{out['served']}_vs_base"], ">=", 0.95
        ),
    }
    emit("finetune", out, ratios, targets, as_json=args.json)


if __name__ == "__main__":
    main()
