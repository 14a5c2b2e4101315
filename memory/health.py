"""Data-folder health: SQLite, FTS and the vector store agree; `repair` makes them agree."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text

if TYPE_CHECKING:
    from memory.store import MemoryStore


def check(store: MemoryStore, *, repair: bool = False) -> dict[str, object]:
    with store.read() as conn:
        integrity = conn.execute(text("PRAGMA quick_check")).scalar()
        memories = conn.execute(text("SELECT count(*) FROM memories")).scalar_one()
        chunks = conn.execute(text("SELECT count(*) FROM chunks")).scalar_one()
        pending = conn.execute(text("SELECT count(*) FROM vector_outbox")).scalar_one()
        chunk_ids = {
            f"{r[0]}:{r[1]}" for r in conn.execute(text("SELECT memory_id, ord FROM chunks"))
        }
    replayed = store.replay_vector_outbox() if repair else 0
    vector_ids = store.vectors.all_ids()
    orphans = sorted(vector_ids - chunk_ids)
    missing = sorted(chunk_ids - vector_ids)
    fixed = {"replayed": replayed, "orphans_removed": 0, "vectors_added": 0, "fts_rebuilt": False}
    if repair:
        if orphans:
            store.vectors.delete(orphans)
            fixed["orphans_removed"] = len(orphans)
        if missing:
            with store.read() as conn:
                texts: dict[str, str | None] = {}
                for vid in missing:
                    mid, _, o = vid.rpartition(":")
                    texts[vid] = conn.execute(
                        text("SELECT text FROM chunks WHERE memory_id=:m AND ord=:o"),
                        {"m": mid, "o": int(o)},
                    ).scalar()
            vids = [v for v in missing if texts.get(v)]
            store.vectors.upsert(
                vids,
                store.embedder.embed([texts[v] or "" for v in vids]),
                [v.rpartition(":")[0] for v in vids],
            )
            fixed["vectors_added"] = len(vids)
        with store.write() as conn:
            conn.execute(text("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')"))
        fixed["fts_rebuilt"] = True
        vector_ids = store.vectors.all_ids()
        orphans = sorted(vector_ids - chunk_ids)
        missing = sorted(chunk_ids - vector_ids)
    ok = integrity == "ok" and not orphans and not missing and (pending == 0 or repair)
    out: dict[str, object] = {
        "ok": ok,
        "sqlite": integrity,
        "memories": memories,
        "chunks": chunks,
        "vectors": len(vector_ids),
        "pending_vector_ops": 0 if repair else pending,
        "orphan_vectors": len(orphans),
        "missing_vectors": len(missing),
    }
    if repair:
        out["repaired"] = fixed
    return out
