"""Vault benchmark: SQLCipher-encrypted vs plaintext memory, import throughput and search p95.

    python benchmarks/vault.py --json [--memories 400] [--queries 120] [--rounds 2]

Prints one JSON object. Both stores are real (SQLite/SQLCipher + FTS5 + chromadb) and share one
loaded all-MiniLM-L6-v2, so the only difference is the encryption (the encrypted store also
keeps ids-only vectors). Import is end to end (.jsonl -> chunk -> embed -> SQL -> chromadb),
the two variants alternating for `--rounds` rounds in fresh folders; each search query is run on
both stores back to back (order alternating), embedding the query for real each time.
Ratios (variant / baseline of a speed, so above 1 is faster):
  import_throughput.encrypted_vs_plain  memories/s
  search_p95_speed.encrypted_vs_plain   1 / p95 latency (= plain p95 / encrypted p95)
`unlock_ms` is the one-off Argon2id unwrap (64 MiB, t=3) a locked process pays once.
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
# Run as a script, benchmarks/ comes first on sys.path and its memory.py would shadow the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from benchmarks._common import emit, p50_p95, parser, percentile, ratio, target  # noqa: E402

PASSPHRASE = "benchmark passphrase"
PEOPLE = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo"]
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


def synth(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    return [
        f"Note {seed}-{i}: {rnd.choice(PEOPLE)} took the {rnd.choice(THINGS)} to "
        f"{rnd.choice(PLACES)} "
        f"on day {rnd.randint(1, 28)}; it cost {rnd.randint(5, 900)} euros."
        for i in range(n)
    ]


def open_store(home: Path, embedder, encrypted: bool):  # type: ignore[no-untyped-def]
    """A fresh store; the encrypted one goes through the real enable path first."""
    from memory import MemoryStore, vault
    from memory.vault_db import encrypt_database

    key = None
    if encrypted:
        key = vault.new_data_key()
        MemoryStore(home, embedder=embedder).close()  # schema in plaintext, then migrate it
        encrypt_database(home, key, vault.wrap_key(key, PASSPHRASE))
    store = MemoryStore(home, embedder=embedder, key=key)
    store.vectors.count()  # open chromadb before timing, like a running app
    return store


def timed_import(store, texts: list[str], folder: Path) -> float:  # type: ignore[no-untyped-def]
    src = folder / f"notes-{time.monotonic_ns()}.jsonl"
    src.write_text(
        "\n".join(json.dumps({"text": t, "at": "2024-01-01"}) for t in texts), encoding="utf-8"
    )
    t0 = time.perf_counter()
    report = store.import_paths([src])
    elapsed = time.perf_counter() - t0
    assert report.imported == len(texts), report
    return len(texts) / elapsed


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument(
        "--memories", type=int, default=400, help="memories imported per store and round"
    )
    ap.add_argument("--queries", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    from memory import vault
    from memory.embeddings import Embedder

    embedder = Embedder()
    embedder.embed(["warm up"])
    rates: dict[str, list[float]] = {"plain": [], "encrypted": []}
    lat: dict[str, list[float]] = {"plain": [], "encrypted": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stores = {}
        for r in range(args.rounds):
            order = ["plain", "encrypted"] if r % 2 == 0 else ["encrypted", "plain"]
            for name in order:
                if name in stores:
                    stores[name].close()
                home = root / f"{name}-{r}"
                stores[name] = open_store(home, embedder, name == "encrypted")
                rates[name].append(timed_import(stores[name], synth(args.memories, seed=r), root))
                print(f"round {r} {name}: {rates[name][-1]:.1f} memories/s", file=sys.stderr)
        rnd = random.Random(7)
        queries = [
            f"{rnd.choice(PEOPLE)} {rnd.choice(THINGS)} {rnd.choice(PLACES)}"
            for _ in range(args.queries)
        ]
        for name in stores:  # one warm-up query each (first FTS/HNSW page loads)
            stores[name].search(queries[0], k=5)
        for i, q in enumerate(queries):
            for name in ["plain", "encrypted"] if i % 2 == 0 else ["encrypted", "plain"]:
                t0 = time.perf_counter()
                stores[name].search(q, k=5)
                lat[name].append((time.perf_counter() - t0) * 1000)
        leaked = (
            b"Note 0-1:" in (root / "encrypted-0" / "memex.db").read_bytes()
            if (root / "encrypted-0").exists()
            else b"Note 1-1:" in (root / "encrypted-1" / "memex.db").read_bytes()
        )
        for s in stores.values():
            s.close()
    vf = vault.wrap_key(vault.new_data_key(), PASSPHRASE)
    t0 = time.perf_counter()
    vault.unwrap_key(vf, PASSPHRASE)
    unlock_ms = (time.perf_counter() - t0) * 1000

    best = {k: max(v) for k, v in rates.items()}
    p95 = {k: percentile(v, 95) for k, v in lat.items()}
    import_ratio = ratio(best["encrypted"], best["plain"])
    search_ratio = ratio(1 / p95["encrypted"], 1 / p95["plain"])
    results = {
        "memories_per_round": args.memories,
        "queries": args.queries,
        "rounds": args.rounds,
        "import_memories_per_s": {k: [round(x, 1) for x in v] for k, v in rates.items()},
        "search_ms": {k: p50_p95(v) for k, v in lat.items()},
        "unlock_ms": round(unlock_ms, 1),
        "plaintext_in_encrypted_db": leaked,
    }
    ratios = {
        "import_throughput": {"encrypted_vs_plain": import_ratio},
        "search_p95_speed": {"encrypted_vs_plain": search_ratio},
    }
    targets = {
        "import_throughput.encrypted_vs_plain": target(import_ratio, ">=", 0.85),
        "search_p95_speed.encrypted_vs_plain": target(search_ratio, ">=", 0.85),
    }
    emit("vault", results, ratios, targets, as_json=args.json)


if __name__ == "__main__":
    main()
