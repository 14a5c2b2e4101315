"""Hybrid retrieval: FTS5 BM25 + vector similarity, fused by reciprocal rank fusion, time-aware."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from memory import timeline
from memory.db import from_iso, utcnow
from memory.types import SearchHit

RRF_K = 60
CANDIDATES = 50
SUPERSEDED_PENALTY = 0.5

_STOP = frozenset(
    "a an and are as at be by did do does for from had has have how i in is it me my of on or our "
    "that the their there this to was we were what when where which who whom why will with you your "
    "am can could would should about into than then them they its".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)


# Above this many chunks an OR query over common words makes FTS5 rank most of the table;
# try the (selective) AND of all terms first and fall back to OR only when it finds too little.
LARGE_INDEX_CHUNKS = 20_000
MIN_AND_HITS = 3


def fts_query(query: str, op: str = "OR") -> str | None:
    words = [w.lower() for w in _WORD.findall(query)]
    keep = [w for w in words if w not in _STOP] or words
    if not keep:
        return None
    # Quote each token: FTS5 syntax characters in user input must never reach the parser.
    return f" {op} ".join(f'"{w}"' for w in dict.fromkeys(keep))


def _keyword_rows(conn: Connection, query: str) -> list[tuple[str, int]]:
    sql = text("""SELECT c.memory_id, c.ord FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid
                  WHERE chunks_fts MATCH :q ORDER BY bm25(chunks_fts) LIMIT :n""")
    q_or = fts_query(query, "OR")
    if q_or is None:
        return []
    size = conn.execute(text("SELECT coalesce(max(id), 0) FROM chunks")).scalar_one()
    if size > LARGE_INDEX_CHUNKS:
        q_and = fts_query(query, "AND")
        rows = conn.execute(sql, {"q": q_and, "n": CANDIDATES}).all()
        if len(rows) >= MIN_AND_HITS or q_and == q_or:
            return [(r[0], r[1]) for r in rows]
    return [(r[0], r[1]) for r in conn.execute(sql, {"q": q_or, "n": CANDIDATES}).all()]


@dataclass
class _Cand:
    memory_id: str
    score: float = 0.0
    best_chunk: int | None = None
    best_rank: int = 10**9
    similarity: float | None = None
    keyword: bool = False
    extra: dict[str, float] = field(default_factory=dict)


def hybrid_search(
    conn: Connection,
    query: str,
    k: int,
    vector_query: Callable[[str, int], list[tuple[str, float]]] | None,
) -> list[SearchHit]:
    cands: dict[str, _Cand] = {}

    def add(memory_id: str, chunk_ord: int, rank: int) -> _Cand:
        c = cands.setdefault(memory_id, _Cand(memory_id))
        if rank < c.best_rank:
            c.best_rank, c.best_chunk = rank, chunk_ord
        return c

    # 1) keywords (BM25 over chunks); one memory counts once per list, at its best rank
    seen: set[str] = set()
    for memory_id, chunk_ord in _keyword_rows(conn, query):
        if memory_id in seen:
            continue
        seen.add(memory_id)
        c = add(memory_id, chunk_ord, len(seen))
        c.score += 1.0 / (RRF_K + len(seen))
        c.keyword = True

    # 2) meaning (cosine over chunk embeddings)
    if vector_query is not None:
        seen = set()
        for vector_id, sim in vector_query(query, CANDIDATES):
            memory_id, _, ord_s = vector_id.rpartition(":")
            if memory_id in seen:
                continue
            seen.add(memory_id)
            c = add(memory_id, int(ord_s or 0), len(seen))
            c.score += 1.0 / (RRF_K + len(seen))
            c.similarity = max(sim, c.similarity or -1.0)

    rows_by_id = _load(conn, list(cands))
    # Forgotten memories may linger in the vector store until repair: drop what SQLite lacks.
    cands = {mid: c for mid, c in cands.items() if mid in rows_by_id}
    _apply_time(conn, query, cands, rows_by_id)

    ranked = sorted(cands.values(), key=lambda c: c.score, reverse=True)[:k]
    hits = []
    for c in ranked:
        row = rows_by_id[c.memory_id]
        hits.append(SearchHit(
            id=c.memory_id, text=_chunk_text(conn, c.memory_id, c.best_chunk) or row["text"],
            score=c.score, kind=row["kind"], created_at=from_iso(row["created_at"]) or utcnow(),
            at=from_iso(row["at"]), source=row["source"], superseded_by=row["superseded_by"],
            similarity=c.similarity, keyword_match=c.keyword,
        ))
    return hits


def _apply_time(conn: Connection, query: str, cands: dict[str, _Cand], rows: dict[str, dict]) -> None:
    """Newer facts above the ones they replaced; the current value of an asked-about slot first."""
    past = timeline.asks_about_past(query)
    year = timeline.query_year(query)
    top = max((c.score for c in cands.values()), default=0.0)
    if not past:
        for mid in list(cands):
            succ = rows[mid]["superseded_by"]
            if not succ:
                continue
            base = cands[mid].score
            cands[mid].score = base * SUPERSEDED_PENALTY
            current = _current(conn, succ, rows)
            if current is not None:
                cur = cands.setdefault(current, _Cand(current))
                cur.score = max(cur.score, base * 1.01)
        topic = timeline.query_topic(query)
        if topic:
            row = conn.execute(
                text("""SELECT id FROM memories WHERE ' ' || topic || ' ' LIKE :t
                        ORDER BY coalesce(at, created_at) DESC LIMIT 1"""), {"t": f"% {topic} %"},
            ).first()
            if row is not None:
                if row[0] not in rows:
                    rows.update(_load(conn, [row[0]]))
                cur = cands.setdefault(row[0], _Cand(row[0]))
                cur.score = max(cur.score, top * 1.02)
    if year is not None:
        for mid, c in cands.items():
            when = rows[mid]["at"] or rows[mid]["created_at"]
            if when and when[:4] == str(year):
                c.score *= 1.5


def _current(conn: Connection, memory_id: str, rows: dict[str, dict]) -> str | None:
    """Follow superseded_by links to the memory that is current now (bounded)."""
    for _ in range(32):
        if memory_id not in rows:
            rows.update(_load(conn, [memory_id]))
        row = rows.get(memory_id)
        if row is None:
            return None
        if not row["superseded_by"]:
            return memory_id
        memory_id = row["superseded_by"]
    return None


def _load(conn: Connection, ids: Sequence[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for i in range(0, len(ids), 500):
        part = list(ids[i:i + 500])
        if not part:
            continue
        marks = ",".join(f":p{j}" for j in range(len(part)))
        res = conn.execute(
            text(f"SELECT id, kind, text, at, created_at, source, superseded_by FROM memories WHERE id IN ({marks})"),
            {f"p{j}": v for j, v in enumerate(part)},
        )
        for r in res.mappings():
            out[r["id"]] = dict(r)
    return out


def _chunk_text(conn: Connection, memory_id: str, ord_: int | None) -> str | None:
    if ord_ is None:
        return None
    return conn.execute(
        text("SELECT text FROM chunks WHERE memory_id=:m AND ord=:o"), {"m": memory_id, "o": ord_}
    ).scalar()
