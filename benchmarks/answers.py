"""Answers benchmark: are the sentences right? Persona v2, LoCoMo dev F1, prompt lookup.

    python benchmarks/answers.py --json [--strategies extract,constrained,generate]
                                 [--data DIR] [--locomo-questions N] [--skip-lookup]

- persona v2 (tests/fixtures/persona_v2): answer-correct = the answer contains a gold string and
  has at most 30 words; never-mentioned questions must abstain. Every strategy, same store.
- LoCoMo dev (../shared/data/locomo-dev, or --data / MEMEX_LOCOMO_DIR; skipped without it):
  answer token F1 with the paper's normalisation (lower case, punctuation and articles removed,
  Porter stems; category 1 scored per comma-separated sub-answer, category 3 against the part
  before ";"), categories 1-4; category 5 (adversarial) counts abstentions. Questions are asked
  the day after the conversation's last session, as the paper asks them at its end.
- ask latency p50/p95 end to end (Runtime.ask with the store and model loaded).
- prompt lookup: greedy decode tokens/s of quoting answers with and without prompt lookup
  (inference/lookup.py) on the same prompts, interleaved, outputs compared token for token.
  `--skip-persona --skip-locomo` runs only this part.
"""

from __future__ import annotations

import json
import os
import re
import string
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MEMEX_NO_SERVICE", "1")

from benchmarks._common import emit, parser, percentile, target  # noqa: E402

PERSONA = ROOT / "tests" / "fixtures" / "persona_v2"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "locomo-dev"
MAX_WORDS = 30


def make_runtime(home: Path, **settings: object):
    from app.runtime import Runtime
    from app.settings import load_settings

    settings.setdefault("inbox_use_model", False)
    settings.setdefault("n_ctx", 2048)
    settings.setdefault("max_answer_tokens", 48)
    rt = Runtime(load_settings(home=home, **settings))
    rt.settings.ensure_home()
    return rt


# -- scoring -----------------------------------------------------------------------------


def _stemmer():
    try:
        from nltk.stem import PorterStemmer

        return PorterStemmer().stem
    except ImportError:  # the figure is then approximate; say so in the output
        from memory.relevance import stem

        return stem


STEM = _stemmer()


def normalize(s: str) -> str:
    s = s.lower().replace(",", " ")
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the|and)\b", " ", s)
    return " ".join(s.split())


def f1(prediction: str, truth: str) -> float:
    p = [STEM(w) for w in normalize(prediction).split()]
    t = [STEM(w) for w in normalize(truth).split()]
    common = Counter(p) & Counter(t)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(t)
    return 2 * precision * recall / (precision + recall)


def f1_multi(prediction: str, truth: str) -> float:
    preds = [p for p in prediction.split(",") if p.strip()] or [prediction]
    truths = [t for t in truth.split(",") if t.strip()] or [truth]
    return sum(max(f1(p, t) for p in preds) for t in truths) / len(truths)


def locomo_f1(category: int, prediction: str, answer: str) -> float:
    answer = str(answer)
    if category == 3:
        answer = answer.split(";")[0]
    return f1_multi(prediction, answer) if category == 1 else f1(prediction, answer)


def correct(answer: str, gold: list[str]) -> bool:
    low = answer.lower()
    return len(answer.split()) <= MAX_WORDS and any(g.lower() in low for g in gold)


# -- persona v2 ----------------------------------------------------------------------------


def bench_persona(strategies: list[str], work: Path) -> dict:
    spec = json.loads((PERSONA / "questions.json").read_text(encoding="utf-8"))
    now = datetime.fromisoformat(spec["now"])
    rt = make_runtime(work / "persona")
    report = rt.import_paths([PERSONA / "notes.jsonl"])
    out: dict = {"notes": len(report.memory_ids), "questions": len(spec["questions"])}
    rt.ask("What is my name?", now=now)  # warm: embedder, vector index
    for name in strategies:
        rows, lat = [], []
        for q in spec["questions"]:
            t0 = time.perf_counter()
            ans = rt.ask_stream(q["q"], now=now, strategy=name).result()
            lat.append((time.perf_counter() - t0) * 1000.0)
            ok = (
                ans.abstained
                if q.get("never")
                else (not ans.abstained and correct(ans.answer, q["gold"]))
            )
            rows.append({"q": q["q"], "type": q["type"], "answer": ans.answer, "ok": ok})
        answerable = [r for r in rows if r["type"] != "never"]
        never = [r for r in rows if r["type"] == "never"]
        by_type: dict[str, list[bool]] = {}
        for r in answerable:
            by_type.setdefault(r["type"], []).append(r["ok"])
        out[name] = {
            "answer_correct": round(sum(r["ok"] for r in answerable) / len(answerable), 3),
            "never_abstained": round(sum(r["ok"] for r in never) / max(1, len(never)), 3),
            "by_type": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_type.items())},
            "ask_ms_p50": round(percentile(lat, 50), 1),
            "ask_ms_p95": round(percentile(lat, 95), 1),
            "wrong": [f"{r['q']} -> {r['answer']}" for r in rows if not r["ok"]],
        }
    rt.close()
    return out


# -- LoCoMo --------------------------------------------------------------------------------


def bench_locomo(data: Path, strategies: list[str], limit: int | None, work: Path) -> dict:
    from benchmarks.retrieval import session_time, write_jsonl

    results: dict = {}
    per_strategy: dict[str, dict] = {s: {"f1": {}, "adv": [], "lat": []} for s in strategies}
    for path in sorted(data.glob("*.json")):
        conv = json.loads(path.read_text(encoding="utf-8"))
        name = f"locomo-{path.stem}"
        src = work / f"{name}.jsonl"
        write_jsonl(conv, name, src, chat=True)
        rt = make_runtime(work / name)
        rt.import_paths([src])
        c = conv.get("conversation", conv)
        times = [session_time(str(v)) for k, v in c.items() if k.endswith("_date_time")]
        now = max(t for t in times if t is not None) + timedelta(days=1)
        qa = conv["qa"][:limit] if limit else conv["qa"]
        for name_s in strategies:
            acc = per_strategy[name_s]
            for item in qa:
                cat = int(item["category"])
                t0 = time.perf_counter()
                ans = rt.ask_stream(item["question"], now=now, strategy=name_s).result()
                acc["lat"].append((time.perf_counter() - t0) * 1000.0)
                if cat == 5:
                    acc["adv"].append(ans.abstained)
                else:
                    acc["f1"].setdefault(cat, []).append(
                        locomo_f1(cat, ans.answer, item.get("answer", ""))
                    )
        rt.close()
    names = {1: "multi_hop", 2: "temporal", 3: "open_domain", 4: "single_hop"}
    for name_s, acc in per_strategy.items():
        all_f1 = [v for vals in acc["f1"].values() for v in vals]
        results[name_s] = {
            "f1": round(100 * sum(all_f1) / max(1, len(all_f1)), 1),
            "f1_by_category": {
                names[k]: round(100 * sum(v) / len(v), 1) for k, v in sorted(acc["f1"].items())
            },
            "adversarial_abstention": round(sum(acc["adv"]) / max(1, len(acc["adv"])), 3),
            "questions": len(all_f1) + len(acc["adv"]),
            "ask_ms_p50": round(percentile(acc["lat"], 50), 1),
            "ask_ms_p95": round(percentile(acc["lat"], 95), 1),
        }
    return results


# -- prompt lookup -------------------------------------------------------------------------


def _lookup_prompts(n: int) -> list[list[dict]]:
    """Prompts whose greedy answers copy persona notes (the bundled model quotes these two
    framings; asked to "repeat the note" it mostly chats instead)."""
    notes = [
        json.loads(line)
        for line in (PERSONA / "notes.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    prompts = []
    for j, i in enumerate(range(0, 3 * n, 3)):
        texts = [d["text"] for d in notes[i : i + 3]]
        if j % 2 == 0:
            ask = "Copy this text exactly:\n" + " ".join(texts)
        else:
            ask = "Here are my notes:\n" + "\n".join(texts) + "\nWhat do my notes say? Repeat them."
        prompts.append([{"role": "user", "content": ask}])
    return prompts


def _timed_tokens(llm) -> list[tuple[list[int], float]]:
    """Record each generation's tokens and decode seconds (first token to last)."""
    runs: list[tuple[list[int], float]] = []
    inner = llm.generate

    def generate(tokens, **kwargs):
        said: list[int] = []
        first = last = 0.0
        try:
            for token in inner(tokens, **kwargs):
                last = time.perf_counter()
                first = first or last
                said.append(int(token))
                yield token
        finally:
            runs.append((said, last - first))

    llm.generate = generate
    return runs


def bench_lookup(n: int = 8, rounds: int = 3, draft: int = 8) -> dict:
    """Greedy decode tokens/s of quoting answers with and without prompt lookup.

    All variants load the same model with the same threads and take turns prompt by prompt
    (plain, lookup, plain without flash attention), so machine load hits them alike; tok/s is
    the median over rounds. Plain greedy with flash attention is the reference for identity.
    """
    from inference.llamacpp import load_llama, physical_cores
    from inference.models import resolve_model

    prompts = _lookup_prompts(n)
    model, threads = resolve_model(""), physical_cores()
    variants = {
        "plain": dict(flash_attn=True),
        "prompt_lookup": dict(prompt_lookup=draft),
        "plain_no_flash_attn": {},
    }
    llms = {k: load_llama(model, n_ctx=2048, threads=threads, **v) for k, v in variants.items()}
    runs = {k: _timed_tokens(llm) for k, llm in llms.items()}
    load_before = os.getloadavg()[0]
    per_round: dict[str, list[float]] = {k: [] for k in llms}
    for _ in range(rounds):
        start = {k: len(r) for k, r in runs.items()}
        for p in prompts:
            for llm in llms.values():
                llm.create_chat_completion(messages=p, max_tokens=96, temperature=0.0)
        for k, r in runs.items():
            mine = r[start[k] :]
            per_round[k].append(sum(len(t) - 1 for t, _ in mine) / sum(s for _, s in mine))
    for llm in llms.values():
        llm.close()
    plain = [t for t, _ in runs["plain"]]
    same = [t == u for t, (u, _) in zip(plain, runs["prompt_lookup"], strict=True)]
    out: dict = {
        "prompts": n,
        "rounds": rounds,
        "threads": threads,
        "draft_tokens": draft,
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    for k in llms:
        out[k] = {
            "tokens": sum(len(t) for t, _ in runs[k][: len(prompts)]),
            "tok_s": round(percentile(per_round[k], 50), 1),
            "tok_s_rounds": [round(x, 1) for x in per_round[k]],
        }
    out["identical_rate"] = round(sum(same) / len(same), 3)
    out["identical_outputs"] = all(same)
    return out


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--strategies", default="extract,constrained,generate")
    ap.add_argument(
        "--data", type=Path, default=Path(os.environ.get("MEMEX_LOCOMO_DIR") or DEFAULT_DATA)
    )
    ap.add_argument(
        "--locomo-questions", type=int, default=None, help="first N questions per conversation"
    )
    ap.add_argument("--locomo-strategies", default="extract")
    ap.add_argument("--skip-lookup", action="store_true")
    ap.add_argument("--skip-locomo", action="store_true")
    ap.add_argument("--skip-persona", action="store_true")
    ap.add_argument("--show-wrong", action="store_true")
    args = ap.parse_args()
    strategies = [s for s in args.strategies.split(",") if s]
    results: dict = {"stemmer": getattr(STEM, "__module__", "")}
    ratios: dict = {}
    targets: dict = {}
    with tempfile.TemporaryDirectory(prefix="memex-answers-") as tmp:
        work = Path(tmp)
        if not args.skip_persona:
            results["persona_v2"] = p = bench_persona(strategies, work)
            if not args.show_wrong:
                for name in strategies:
                    p[name].pop("wrong", None)
            best = p[strategies[0]]
            targets["persona_v2.answer_correct"] = target(best["answer_correct"], ">=", 0.90)
            targets["persona_v2.never_abstained"] = target(best["never_abstained"], ">=", 0.9)
            targets["persona_v2.ask_ms_p50"] = target(best["ask_ms_p50"], "<=", 1500)
        if not args.skip_locomo and args.data.is_dir():
            ls = [s for s in args.locomo_strategies.split(",") if s]
            results["locomo_dev"] = lc = bench_locomo(args.data, ls, args.locomo_questions, work)
            targets["locomo_dev.f1"] = target(lc[ls[0]]["f1"], ">=", 35)
            targets["locomo_dev.adversarial_abstention"] = target(
                lc[ls[0]]["adversarial_abstention"], ">=", 0.7
            )
        elif not args.skip_locomo:
            results["locomo_dev"] = {"skipped": f"no data at {args.data.name}"}
        if not args.skip_lookup:
            results["prompt_lookup"] = lk = bench_lookup()
            ratios["decode_tok_s"] = {
                "prompt_lookup_vs_plain": round(
                    lk["prompt_lookup"]["tok_s"] / lk["plain"]["tok_s"], 3
                )
            }
            targets["decode_tok_s.prompt_lookup_vs_plain"] = target(
                ratios["decode_tok_s"]["prompt_lookup_vs_plain"], ">=", 1.3
            )
    emit("answers", results, ratios, targets, as_json=args.json)


if __name__ == "__main__":
    main()
