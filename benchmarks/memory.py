"""Memory benchmark: ingest throughput vs. the raw embedding model, and search latency at scale.

    python benchmarks/memory.py --json [--ingest 2000] [--sizes 10000,100000] [--queries 200]

Prints one JSON object. Ingest is end to end (parse .jsonl -> chunk -> embed -> SQLite+FTS ->
chromadb) compared with `Embedder.embed` alone on the same texts in the same run (the model is
loaded before either is timed). For the search-latency indexes, the first `--embed-pool` memories
are embedded for real; beyond that, memories reuse pool embeddings with small random jitter
(renormalized) so a 100k index builds in minutes on 2 cores; latency depends on index size,
not on which vectors are stored. Every query is embedded for real at search time.
Ratio: `ingest_vs_raw_embed` = ingest memories/s over raw embedding texts/s (1.0: the rest is free).
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, benchmarks/ comes first on sys.path and this file would shadow the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks._common import emit, p50_p95, parser, ratio, target  # noqa: E402

PEOPLE = [
    "Ana",
    "Ben",
    "Chen",
    "Dara",
    "Eli",
    "Fatima",
    "Gus",
    "Hana",
    "Ivan",
    "Jo",
    "Kemal",
    "Lena",
]
PLACES = [
    "Lisbon",
    "Berlin",
    "Kyoto",
    "Oslo",
    "Quito",
    "Accra",
    "Perth",
    "Tallinn",
    "Austin",
    "Porto",
]
THINGS = [
    "bike",
    "cello",
    "garden",
    "kayak",
    "laptop",
    "recipe",
    "novel",
    "camera",
    "tent",
    "piano",
]
VERBS = [
    "repaired",
    "borrowed",
    "sold",
    "painted",
    "bought",
    "lost",
    "found",
    "cleaned",
    "shipped",
    "tested",
]


def synth(n: int, seed: int = 0) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            f"Note {i}: {rnd.choice(PEOPLE)} {rnd.choice(VERBS)} the {rnd.choice(THINGS)} in "
            f"{rnd.choice(PLACES)} on day {rnd.randint(1, 28)} of month {rnd.randint(1, 12)}; "
            f"it cost {rnd.randint(5, 900)} euros and took {rnd.randint(1, 9)} hours."
        )
    return out


def bench_ingest(embedder, n: int) -> dict:
    from memory import MemoryStore

    texts = synth(n, seed=1)
    t0 = time.perf_counter()
    embedder.embed(texts)
    raw_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "notes.jsonl"
        src.write_text(
            "\n".join(json.dumps({"text": t, "at": "2024-01-01"}) for t in synth(n, seed=2))
        )
        store = MemoryStore(Path(d) / "home", embedder=embedder)
        store.vectors.count()  # open chromadb before timing, like a running app
        t0 = time.perf_counter()
        report = store.import_paths([src])
        e2e_s = time.perf_counter() - t0
        store.close()
    assert report.imported == n, report.to_json()
    # a throughput ratio, ingest / raw embedding: 1.0 would mean the pipeline costs nothing
    return {"n": n, "raw_embed_per_s": round(n / raw_s, 1), "ingest_per_s": round(n / e2e_s, 1)}


def fill(store, n: int, pool: int, embedder) -> dict:
    import numpy as np

    from memory import records
    from memory.db import utcnow

    texts = synth(n, seed=3)
    pool_vecs = np.asarray(embedder.embed(texts[:pool]), dtype=np.float32)
    rng = np.random.default_rng(0)
    now = utcnow()
    step = 5000
    for i in range(0, n, step):
        part = texts[i : i + step]
        mems = [
            records.NewMemory(
                id=records.new_id(),
                kind="note",
                text=t,
                hash=records.content_hash(t),
                at=None,
                created_at=now,
                source="bench",
                source_id=None,
                topic=None,
                chunks=[t],
            )
            for t in part
        ]
        idx = np.arange(i, i + len(part))
        vecs = pool_vecs[idx % pool]
        jitter = idx >= pool
        vecs[jitter] += rng.normal(0, 0.02, size=(int(jitter.sum()), vecs.shape[1])).astype(
            np.float32
        )
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        for m, v in zip(mems, vecs):
            m.embeddings = [v.tolist()]
        with store.write() as conn:
            records.insert_memories(conn, mems)
        store.flush_vectors(mems)
    return {"embedded_for_real": min(pool, n), "jittered": max(0, n - pool)}


def bench_search(embedder, n: int, pool: int, queries: int) -> dict:
    from memory import MemoryStore

    with tempfile.TemporaryDirectory() as d:
        store = MemoryStore(Path(d), embedder=embedder)
        t0 = time.perf_counter()
        filled = fill(store, n, pool, embedder)
        build_s = time.perf_counter() - t0
        rnd = random.Random(7)
        qs = [
            f"when did {rnd.choice(PEOPLE)} {rnd.choice(VERBS)} the {rnd.choice(THINGS)} "
            f"in {rnd.choice(PLACES)}"
            for _ in range(queries)
        ]
        for q in qs[:5]:
            store.search(q, k=5)  # warm caches
        lat = []
        for q in qs:
            t = time.perf_counter()
            store.search(q, k=5)
            lat.append((time.perf_counter() - t) * 1000)
        # the query embedding alone, for context
        emb = []
        for q in qs[:50]:
            t = time.perf_counter()
            embedder.embed_one(q)
            emb.append((time.perf_counter() - t) * 1000)
        store.close()
    return {
        "n": n,
        "build_s": round(build_s, 1),
        **filled,
        "search_ms": p50_p95(lat),
        "query_embed_ms": p50_p95(emb),
    }


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--ingest", type=int, default=2000)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--embed-pool", type=int, default=10000)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()

    from memory.embeddings import Embedder

    embedder = Embedder()
    embedder.embed(["warm up"] * 8)
    ingest = bench_ingest(embedder, args.ingest)
    search = [
        bench_search(embedder, n, args.embed_pool, args.queries)
        for n in (int(s) for s in args.sizes.split(",") if s)
    ]
    ratios = {"ingest_vs_raw_embed": ratio(ingest["ingest_per_s"], ingest["raw_embed_per_s"])}
    targets = {"ingest_vs_raw_embed": target(ratios["ingest_vs_raw_embed"], ">=", 0.8)}
    largest = max(search, key=lambda r: r["n"], default=None)
    if largest is not None:
        targets[f"search_p95_ms_at_{largest['n']}"] = target(largest["search_ms"]["p95"], "<=", 50)
    emit("memory", {"ingest": ingest, "search": search}, ratios, targets, as_json=args.json)


if __name__ == "__main__":
    main()
