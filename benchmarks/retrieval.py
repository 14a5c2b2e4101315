"""Retrieval benchmark: LoCoMo evidence recall@k over chat turns, persona update order, latency.

    python benchmarks/retrieval.py --json [--data DIR] [--variants baseline,full] [--questions N]

Each LoCoMo conversation is imported into a fresh store as chat turns (one memory per turn:
speaker, session, event time = the session's date_time, source names the dia_id). For every
question with evidence, recall@k is the share of its evidence turns among the first k turns
returned (every hit is one stored turn, so k counts dialog turns). Variants, same data, same run:

- baseline: turns imported the way a plain .jsonl of "Speaker: text" notes is today (no speaker
  or session fields), searched with every query-side retrieval feature switched off;
- full: turns as chat memories (speaker, session, context embeddings, session summaries, the
  neighbour-word context index) and the full query pipeline (query understanding with the
  named speakers left out of the query vector, multi-hop second round, neighbour turns);
- full-FEATURE (ablation, e.g. full-context, full-multi_hop, full-neighbours, full-summaries):
  full with that RetrievalOptions switch off.

The data lives outside the project (../shared/data/locomo-dev next to the repository, or
--data / MEMEX_LOCOMO_DIR); without it the LoCoMo part is skipped. Category 5 (adversarial)
is reported on its own and left out of the overall figures, as in the paper's evidence recall.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks._common import emit, p50_p95, parser, ratio, target  # noqa: E402

KS = (5, 10, 25)
CATEGORIES = {1: "multi_hop", 2: "temporal", 3: "open_domain", 4: "single_hop", 5: "adversarial"}
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo-dev"
_SESSION = re.compile(r"^session_(\d+)$")


def session_time(value: str) -> datetime | None:
    """LoCoMo's "1:56 pm on 8 May, 2023" as an aware datetime (UTC: the data has no zone)."""
    for fmt in ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y"):
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def turn_text(turn: dict) -> str:
    text = str(turn.get("text") or "").strip()
    caption = turn.get("blip_caption")
    if caption:  # an image shared in the chat, as the dataset describes it
        text = f"{text} [shares a photo: {caption}]".strip()
    return text


def write_jsonl(conv: dict, name: str, path: Path, *, chat: bool) -> None:
    c = conv["conversation"] if "conversation" in conv else conv
    lines = []
    for key in sorted(
        (k for k in c if _SESSION.match(k)), key=lambda k: int(_SESSION.match(k).group(1))
    ):
        n = int(_SESSION.match(key).group(1))
        at = session_time(str(c.get(f"session_{n}_date_time") or ""))
        for turn in c[key] or []:
            text = turn_text(turn)
            if not text:
                continue
            row: dict[str, object] = {
                "kind": "chat" if chat else "note",
                "source": f"{name}#{turn['dia_id']}",
            }
            if at is not None:
                row["at"] = at.isoformat()
            if chat:
                row.update(text=text, speaker=turn["speaker"], session=f"{name} session {n}")
            else:
                row["text"] = f"{turn['speaker']}: {text}"
            lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def evidence_ids(qa: dict) -> list[str]:
    out: list[str] = []
    for e in qa.get("evidence") or []:
        out.extend(x for x in re.split(r"[;,\s]+", str(e)) if x)
    return list(dict.fromkeys(out))


def search_fn(store, variant: str):
    if variant == "baseline":
        try:
            from memory.retrieval import RetrievalOptions
        except ImportError:  # code from before the options existed
            return lambda q, k: store.search(q, k=k)
        off = RetrievalOptions.off()
        return lambda q, k: store.search(q, k=k, options=off)
    if variant.startswith("full-"):
        from memory.retrieval import RetrievalOptions

        ablated = RetrievalOptions(**{variant.removeprefix("full-"): False})
        return lambda q, k: store.search(q, k=k, options=ablated)
    return lambda q, k: store.search(q, k=k)


def run_conversation(
    embedder, conv: dict, name: str, variant: str, limit: int | None
) -> tuple[list[dict], list[float], dict]:
    from memory import MemoryStore

    rows: list[dict] = []
    lat: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / f"{name}.jsonl"
        write_jsonl(conv, name, src, chat=variant != "baseline")
        store = MemoryStore(Path(d) / "home", embedder=embedder)
        t0 = time.perf_counter()
        report = store.import_paths([src])
        ingest_s = time.perf_counter() - t0
        search = search_fn(store, variant)
        qas = [q for q in conv["qa"] if evidence_ids(q)]
        if limit:
            qas = qas[:limit]
        search(qas[0]["question"], max(KS)) if qas else None  # warm caches
        for qa in qas:
            t = time.perf_counter()
            hits = search(qa["question"], max(KS))
            lat.append((time.perf_counter() - t) * 1000)
            got = [(h.source or "").rpartition("#")[2] for h in hits]
            ev = evidence_ids(qa)
            rows.append(
                {
                    "category": int(qa.get("category", 0)),
                    **{f"r@{k}": sum(1 for e in ev if e in got[:k]) / len(ev) for k in KS},
                }
            )
        store.close()
    return rows, lat, {"turns": report.imported, "ingest_s": round(ingest_s, 1)}


def summarize(rows: list[dict], lat: list[float]) -> dict:
    def mean(rs: list[dict], key: str) -> float:
        return round(statistics.fmean(r[key] for r in rs), 4) if rs else 0.0

    main = [r for r in rows if r["category"] != 5]
    out: dict[str, object] = {
        "questions": len(main),
        **{f"recall@{k}": mean(main, f"r@{k}") for k in KS},
    }
    out["per_category"] = {
        CATEGORIES.get(c, str(c)): {"n": len(rs), **{f"recall@{k}": mean(rs, f"r@{k}") for k in KS}}
        for c in sorted({r["category"] for r in rows})
        for rs in [[r for r in rows if r["category"] == c]]
    }
    out["search_ms"] = p50_p95(lat) if lat else None
    return out


def bench_locomo(embedder, data: Path, variants: list[str], limit: int | None) -> dict:
    files = sorted(data.glob("*.json"))
    convs = {f.stem: json.loads(f.read_text(encoding="utf-8")) for f in files}
    out: dict[str, object] = {"conversations": list(convs)}
    for variant in variants:
        rows: list[dict] = []
        lat: list[float] = []
        ingest: dict[str, dict] = {}
        for name, conv in convs.items():
            r, times, info = run_conversation(embedder, conv, name, variant, limit)
            rows += r
            lat += times
            ingest[name] = info
        out[variant] = {**summarize(rows, lat), "ingest": ingest}
    return out


def bench_persona(embedder) -> dict:
    """Recall@5 and update order on the project's persona (tests/fixtures/persona)."""
    from memory import MemoryStore

    persona = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "persona"
    notes = [
        json.loads(line)
        for line in (persona / "notes.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    questions = json.loads((persona / "questions.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as d:
        store = MemoryStore(Path(d), embedder=embedder)
        store.import_paths([persona / "notes.jsonl"])
        by_text = {m.text: m.id for m in store.iter_memories()}
        ids = {n["key"]: by_text.get(n["text"]) for n in notes}
        hit = order_ok = order_n = 0
        for q in questions:
            got = [h.id for h in store.search(q["q"], k=5)]
            expect = [ids[k] for k in q["expect"]]
            pos = min((got.index(e) for e in expect if e in got), default=99)
            hit += pos < 99
            for key in q.get("stale", []):
                order_n += 1
                order_ok += ids[key] not in got or got.index(ids[key]) > pos
        store.close()
    return {
        "questions": len(questions),
        "recall@5": round(hit / len(questions), 4),
        "update_order": round(order_ok / order_n, 4) if order_n else None,
    }


class CachedEmbedder:
    """Tuning runs: the same texts are embedded once per cache file (vectors are identical)."""

    def __init__(self, inner, path: Path) -> None:
        import pickle

        self.inner, self.path, self._pickle = inner, path, pickle
        self.cache: dict[str, list[float]] = (
            pickle.loads(path.read_bytes()) if path.exists() else {}
        )
        self.batch_size = inner.batch_size

    def embed(self, texts):
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if todo:
            self.cache.update(zip(todo, self.inner.embed(todo)))
        return [self.cache[t] for t in texts]

    def embed_one(self, text):
        return self.embed([text])[0]

    def save(self) -> None:
        self.path.write_bytes(self._pickle.dumps(self.cache))


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--data", default=os.environ.get("MEMEX_LOCOMO_DIR") or str(DEFAULT_DATA))
    ap.add_argument("--variants", default="baseline,full")
    ap.add_argument(
        "--questions", type=int, default=0, help="at most this many questions per conversation"
    )
    ap.add_argument("--no-persona", action="store_true")
    ap.add_argument("--embed-cache", default="", help="reuse embeddings across runs (tuning only)")
    args = ap.parse_args()

    from memory.embeddings import Embedder

    embedder = Embedder()
    embedder.embed(["warm up"] * 8)
    if args.embed_cache:
        embedder = CachedEmbedder(embedder, Path(args.embed_cache))
    variants = [v for v in args.variants.split(",") if v]
    results: dict[str, object] = {}
    data = Path(args.data)
    if data.is_dir() and any(data.glob("*.json")):
        results["locomo_dev"] = bench_locomo(embedder, data, variants, args.questions or None)
    else:
        results["locomo_dev"] = {"skipped": f"no LoCoMo data at {data.name!r}"}
    if not args.no_persona:
        results["persona"] = bench_persona(embedder)
    if isinstance(embedder, CachedEmbedder):
        embedder.save()
    ratios: dict[str, dict[str, float | None]] = {}
    targets: dict[str, dict] = {}
    loco = results["locomo_dev"]
    if isinstance(loco, dict) and "baseline" in loco:
        for v in (v for v in variants if v != "baseline" and v in loco):
            for k in KS:
                ratios.setdefault(f"recall@{k}", {})[f"{v}_vs_baseline"] = ratio(
                    loco[v][f"recall@{k}"], loco["baseline"][f"recall@{k}"]
                )
            ratios.setdefault("search_p95_ms", {})[f"{v}_vs_baseline"] = ratio(
                loco[v]["search_ms"]["p95"], loco["baseline"]["search_ms"]["p95"]
            )
    order = (["full"] if "full" in variants else []) + list(reversed(variants))  # targets: full
    best = next((loco[v] for v in order if isinstance(loco, dict) and v in loco), None)
    if best is not None:
        targets["locomo_recall@10"] = target(best["recall@10"], ">=", 0.85)
        targets["locomo_recall@25"] = target(best["recall@25"], ">=", 0.92)
    if "persona" in results:
        targets["persona_update_order"] = target(results["persona"]["update_order"], ">=", 1.0)
    emit("retrieval", results, ratios, targets, as_json=args.json)


if __name__ == "__main__":
    main()
