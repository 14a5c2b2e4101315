"""Hybrid retrieval: FTS5 BM25 + vector similarity, fused by reciprocal rank fusion, time-aware.

Round 1 fuses the keyword and the vector ranking of the query's content terms (memory.query
drops function words and time fillers). Query understanding then boosts the turns of speakers
the query names and the memories inside a time window it states. A bounded second round
(multi-hop) searches again from the first round's top hits: their entities as keywords and
their embeddings mixed into the query vector, fused by reciprocal rank at a lower weight.
Chat turns next to a strong hit in the same session are added as weaker candidates: evidence
in conversations is often spread over consecutive turns. For the same reason a third keyword
ranking matches each chat turn with its neighbours' words (memory.summaries' context index).
The query vector leaves out the names of the speakers the query names: the speaker boost
prefers their turns, and in the vector the names pull towards turns that merely address them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Connection, text

from memory import query as qmod
from memory import summaries, timeline
from memory.db import from_iso, utcnow
from memory.types import SearchHit

RRF_K = 10
KEYWORD_WEIGHT = 0.5
CANDIDATES = 50
SUPERSEDED_PENALTY = 0.5
SPEAKER_BOOST = 2.0
WINDOW_BOOST = 1.4
ROUND2_WEIGHT = 0.1
ROUND2_SEEDS = 3
NEIGHBOUR_SEEDS = 8
NEIGHBOUR_SHARE = 0.4
SUMMARY_UNITS = 10
SUMMARY_WEIGHT = 0.25
CONTEXT_WEIGHT = 0.5

_STOP = frozenset(
    "a an and are as at be by did do does for from had has have how i in is it me my of on or our "
    "that the their there this to was we were what when where which who whom why will with you "
    "your am can could would should about into than then them they its".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)
_ENTITY = re.compile(r"(?P<lead>^|[.!?]\s+|)\b(?P<w>[A-ZÀ-ÖØ-Þ][\w'’-]{2,})")

# Above this many chunks an OR query over common words makes FTS5 rank most of the table;
# try the (selective) AND of all terms first and fall back to OR only when it finds too little.
LARGE_INDEX_CHUNKS = 20_000
MIN_AND_HITS = 3


@dataclass(frozen=True)
class RetrievalOptions:
    """Switches for the retrieval features (benchmarks compare them; the app uses defaults)."""

    query_understanding: bool = True
    multi_hop: bool = True
    neighbours: bool = True
    summaries: bool = True
    context: bool = True  # chat turns matched by their neighbours' words too
    candidates: int = 100

    @classmethod
    def off(cls) -> RetrievalOptions:
        return cls(
            query_understanding=False,
            multi_hop=False,
            neighbours=False,
            summaries=False,
            context=False,
            candidates=CANDIDATES,
        )


class VectorAccess(Protocol):
    def embed(self, text: str) -> list[float]: ...
    def query(self, embedding: Sequence[float], n: int) -> list[tuple[str, float]]: ...
    def embeddings(self, ids: Sequence[str]) -> dict[str, list[float]]: ...


def fts_query(query: str, op: str = "OR") -> str | None:
    words = [w.lower() for w in _WORD.findall(query)]
    keep = [w for w in words if w not in _STOP] or words
    return _fts(keep, op)


def _fts(terms: Sequence[str], op: str) -> str | None:
    if not terms:
        return None
    # Quote each token: FTS5 syntax characters in user input must never reach the parser.
    return f" {op} ".join(f'"{w}"' for w in dict.fromkeys(t.replace('"', "") for t in terms) if w)


def _keyword_rows(
    conn: Connection, terms: Sequence[str] | str, n: int = CANDIDATES
) -> list[tuple[str, int]]:
    if isinstance(terms, str):
        words = [w.lower() for w in _WORD.findall(terms)]
        terms = [w for w in words if w not in _STOP] or words
    sql = text("""SELECT c.memory_id, c.ord FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid
                  WHERE chunks_fts MATCH :q ORDER BY bm25(chunks_fts) LIMIT :n""")
    q_or = _fts(terms, "OR")
    if q_or is None:
        return []
    size = conn.execute(text("SELECT coalesce(max(id), 0) FROM chunks")).scalar_one()
    if size > LARGE_INDEX_CHUNKS:
        q_and = _fts(terms, "AND")
        rows = conn.execute(sql, {"q": q_and, "n": n}).all()
        if len(rows) >= MIN_AND_HITS or q_and == q_or:
            return [(r[0], r[1]) for r in rows]
    return [(r[0], r[1]) for r in conn.execute(sql, {"q": q_or, "n": n}).all()]


@dataclass
class _Cand:
    memory_id: str
    score: float = 0.0
    best_chunk: int | None = None
    best_rank: int = 10**9
    similarity: float | None = None
    keyword: bool = False
    extra: dict[str, float] = field(default_factory=dict)


class _Fusion:
    def __init__(self) -> None:
        self.cands: dict[str, _Cand] = {}

    def add_list(
        self,
        ranked: Sequence[tuple[str, int]],
        weight: float,
        *,
        keyword: bool = False,
        sims: Sequence[float] | None = None,
    ) -> None:
        """One ranked list; a memory counts once per list, at its best rank."""
        seen: set[str] = set()
        for i, (memory_id, chunk_ord) in enumerate(ranked):
            if memory_id in seen:
                continue
            seen.add(memory_id)
            rank = len(seen)
            c = self.cands.setdefault(memory_id, _Cand(memory_id))
            if rank < c.best_rank:
                c.best_rank, c.best_chunk = rank, chunk_ord
            c.score += weight / (RRF_K + rank)
            c.keyword = c.keyword or keyword
            if sims is not None:
                c.similarity = max(sims[i], c.similarity or -1.0)

    def add_groups(self, groups: Sequence[Sequence[str]], weight: float) -> None:
        """Ranked groups (summary units): every memory of the group at rank r scores as rank r."""
        seen: set[str] = set()
        for rank, ids in enumerate(groups, start=1):
            for memory_id in ids:
                if memory_id in seen:
                    continue
                seen.add(memory_id)
                c = self.cands.setdefault(memory_id, _Cand(memory_id))
                c.score += weight / (RRF_K + rank)


def _split(vector_hits: Sequence[tuple[str, float]]) -> tuple[list[tuple[str, int]], list[float]]:
    ranked, sims = [], []
    for vector_id, sim in vector_hits:
        memory_id, _, ord_s = vector_id.rpartition(":")
        ranked.append((memory_id, int(ord_s or 0)))
        sims.append(sim)
    return ranked, sims


def hybrid_search(
    conn: Connection,
    query: str,
    k: int,
    vectors: VectorAccess | Callable[[str, int], list[tuple[str, float]]] | None,
    *,
    speaker: str | None = None,
    options: RetrievalOptions | None = None,
) -> list[SearchHit]:
    opts = options or RetrievalOptions()
    search_fn = None
    if callable(vectors):  # a plain (query, n) -> hits function: no second round possible
        search_fn, vectors = vectors, None
    n = opts.candidates * (3 if speaker else 1)
    plan = _plan(conn, query, opts)
    fusion = _Fusion()
    fusion.add_list(
        _keyword_rows(conn, plan.terms, n),
        KEYWORD_WEIGHT if opts.query_understanding else 1.0,
        keyword=True,
    )
    q_emb: list[float] | None = None
    semantic = plan.semantic or query
    if search_fn is not None:
        ranked, sims = _split(search_fn(semantic, n))
        fusion.add_list(ranked, 1.0, sims=sims)
    elif vectors is not None:
        q_emb = vectors.embed(semantic)
        ranked, sims = _split(vectors.query(q_emb, n))
        fusion.add_list(ranked, 1.0, sims=sims)
    if opts.summaries:
        fusion.add_groups(
            summaries.search_units(conn, _fts(plan.terms, "OR"), SUMMARY_UNITS), SUMMARY_WEIGHT
        )
    if opts.context:
        ctx = summaries.search_context(
            conn,
            _fts(plan.terms, "OR"),
            _fts(plan.terms, "AND"),
            n,
            large=LARGE_INDEX_CHUNKS,
            min_and_hits=MIN_AND_HITS,
        )
        fusion.add_groups([[mid] for mid in ctx], CONTEXT_WEIGHT)
    cands = fusion.cands

    rows_by_id = _load(conn, list(cands))
    # Forgotten memories may linger in the vector store until repair: drop what SQLite lacks.
    cands = {mid: c for mid, c in cands.items() if mid in rows_by_id}
    if speaker:
        want = speaker.strip().casefold()
        cands = {
            mid: c
            for mid, c in cands.items()
            if (rows_by_id[mid]["speaker"] or "").casefold() == want
        }
    fusion.cands = cands
    if opts.query_understanding:
        _understand(conn, plan, cands, rows_by_id)
    if opts.multi_hop and vectors is not None and q_emb is not None:
        _second_round(conn, plan, fusion, rows_by_id, vectors, q_emb, n // 2, speaker)
        cands = fusion.cands
    if opts.neighbours:
        _neighbours(conn, cands, rows_by_id, speaker)
    _apply_time(conn, query, cands, rows_by_id, legacy_year=not opts.query_understanding)

    ranked_c = sorted(cands.values(), key=lambda c: c.score, reverse=True)[:k]
    hits = []
    for c in ranked_c:
        row = rows_by_id[c.memory_id]
        hits.append(
            SearchHit(
                id=c.memory_id,
                text=_chunk_text(conn, c.memory_id, c.best_chunk) or row["text"],
                score=c.score,
                kind=row["kind"],
                created_at=from_iso(row["created_at"]) or utcnow(),
                at=from_iso(row["at"]),
                source=row["source"],
                superseded_by=row["superseded_by"],
                similarity=c.similarity,
                keyword_match=c.keyword,
                speaker=row["speaker"],
                session=row["session"],
            )
        )
    return hits


def _speakers(conn: Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            text("SELECT DISTINCT speaker FROM memories WHERE speaker IS NOT NULL LIMIT 200")
        )
    ]


def _plan(conn: Connection, query: str, opts: RetrievalOptions) -> qmod.QueryPlan:
    if not opts.query_understanding:
        words = [w.lower() for w in _WORD.findall(query)]
        return qmod.QueryPlan(text=query, terms=[w for w in words if w not in _STOP] or words)
    return qmod.analyze(query, _speakers(conn), utcnow())


def _understand(
    conn: Connection, plan: qmod.QueryPlan, cands: dict[str, _Cand], rows: dict[str, dict]
) -> None:
    """Boost the named speakers' turns and the memories inside the asked-about time window."""
    named = {s.casefold() for s in plan.speakers}
    window = plan.window
    if window is None and plan.event_phrase:
        window = _event_window(conn, plan)
    mentioned = _mentioned_in(conn, window, list(cands)) if window is not None else set()
    for mid, c in cands.items():
        row = rows[mid]
        if named and (row["speaker"] or "").casefold() in named:
            c.score *= SPEAKER_BOOST
        if window is not None:
            when = from_iso(row["at"] or row["created_at"])
            if mid in mentioned or (when is not None and window.contains(when)):
                c.score *= WINDOW_BOOST


def _mentioned_in(conn: Connection, window: qmod.TimeWindow, ids: Sequence[str]) -> set[str]:
    """Candidates whose text mentions a date inside the window.

    A date such as "last Friday" is resolved when the memory is written.
    """
    lo = window.start.date().isoformat() if window.start else "0000-01-01"
    hi = window.end.date().isoformat() if window.end else "9999-12-31"
    out: set[str] = set()
    for i in range(0, len(ids), 500):
        part = list(ids[i : i + 500])
        marks = ",".join(f":i{j}" for j in range(len(part)))
        out.update(
            r[0]
            for r in conn.execute(
                text(
                    "SELECT DISTINCT memory_id FROM memory_dates "
                    f"WHERE memory_id IN ({marks}) AND start_date < :hi AND end_date >= :lo"
                ),
                {"lo": lo, "hi": hi, **{f"i{j}": v for j, v in enumerate(part)}},
            )
        )
    return out


def _event_window(conn: Connection, plan: qmod.QueryPlan) -> qmod.TimeWindow | None:
    """For "before I moved", the time of the best keyword match for the event bounds the window."""
    q = _fts((plan.event_phrase or "").split(), "AND")
    if q is None:
        return None
    row = conn.execute(
        text(
            """SELECT coalesce(m.at, m.created_at) FROM chunks_fts
           JOIN chunks c ON c.id = chunks_fts.rowid JOIN memories m ON m.id = c.memory_id
           WHERE chunks_fts MATCH :q ORDER BY bm25(chunks_fts) LIMIT 1"""
        ),
        {"q": q},
    ).first()
    when = from_iso(row[0]) if row else None
    if when is None:
        return None
    return (
        qmod.TimeWindow(None, when)
        if plan.event_relation == "before"
        else qmod.TimeWindow(when, None)
    )


def _second_round(
    conn: Connection,
    plan: qmod.QueryPlan,
    fusion: _Fusion,
    rows: dict[str, dict],
    vectors: VectorAccess,
    q_emb: list[float],
    n: int,
    speaker: str | None,
) -> None:
    """Multi-hop: search again from the top hits (their entities, their vectors), lower weight."""
    seeds = sorted(fusion.cands.values(), key=lambda c: c.score, reverse=True)[:ROUND2_SEEDS]
    if not seeds:
        return
    # Speakers' names are capitalised in nearly every turn: as seeds they match everything.
    known = set(plan.terms) | {w.lower() for sp in _speakers(conn) for w in _WORD.findall(sp)}
    entities: list[str] = []
    for s in seeds:
        for m in _ENTITY.finditer(rows[s.memory_id]["text"]):
            if m.group("lead") or m.start() == 0:
                continue  # a sentence's first word is capitalised anyway
            w = m.group("w").lower().strip("'’")
            if w not in known and w not in qmod.STOPWORDS and w not in entities:
                entities.append(w)
    before = set(fusion.cands)
    if entities:
        # Entities alone: rare words, short posting lists (the query terms ran in round 1).
        fusion.add_list(_keyword_rows(conn, entities[:6], n), ROUND2_WEIGHT, keyword=True)
    seed_vecs = vectors.embeddings([f"{s.memory_id}:{s.best_chunk or 0}" for s in seeds])
    if seed_vecs:
        dim = len(q_emb)
        mix = [
            q_emb[i] + 0.5 * sum(v[i] for v in seed_vecs.values()) / len(seed_vecs)
            for i in range(dim)
        ]
        norm = math.sqrt(sum(x * x for x in mix)) or 1.0
        ranked, sims = _split(vectors.query([x / norm for x in mix], n))
        fusion.add_list(ranked, ROUND2_WEIGHT)
    new = [mid for mid in fusion.cands if mid not in before]
    rows.update(_load(conn, [m for m in new if m not in rows]))
    want = speaker.strip().casefold() if speaker else None
    for mid in new:
        row = rows.get(mid)
        if row is None or (want and (row["speaker"] or "").casefold() != want):
            del fusion.cands[mid]


def _neighbours(
    conn: Connection, cands: dict[str, _Cand], rows: dict[str, dict], speaker: str | None
) -> None:
    """The turns just before and after a strong chat hit, in its session, as weaker candidates."""
    top = [
        c
        for c in sorted(cands.values(), key=lambda c: c.score, reverse=True)[:NEIGHBOUR_SEEDS]
        if rows[c.memory_id]["session"]
    ]
    for c in top:
        row = rows[c.memory_id]
        near = conn.execute(
            text(
                """SELECT id FROM memories WHERE session=:s AND rowid IN (
                   (SELECT max(rowid) FROM memories WHERE session=:s AND rowid < :r),
                   (SELECT min(rowid) FROM memories WHERE session=:s AND rowid > :r))"""
            ),
            {"s": row["session"], "r": row["rowid"]},
        ).all()
        for (mid,) in near:
            if mid not in rows:
                rows.update(_load(conn, [mid]))
            if speaker and (rows[mid]["speaker"] or "").casefold() != speaker.strip().casefold():
                continue
            nb = cands.setdefault(mid, _Cand(mid))
            nb.score = max(nb.score, c.score * NEIGHBOUR_SHARE)


def _apply_time(
    conn: Connection,
    query: str,
    cands: dict[str, _Cand],
    rows: dict[str, dict],
    legacy_year: bool = True,
) -> None:
    """Newer facts above the ones they replaced; the current value of an asked-about slot first."""
    past = timeline.asks_about_past(query)
    year = timeline.query_year(query) if legacy_year else None
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
                        ORDER BY coalesce(at, created_at) DESC LIMIT 1"""),
                {"t": f"% {topic} %"},
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
        part = list(ids[i : i + 500])
        if not part:
            continue
        marks = ",".join(f":p{j}" for j in range(len(part)))
        res = conn.execute(
            text(f"""SELECT rowid, id, kind, text, at, created_at, source, superseded_by, speaker,
                     session FROM memories WHERE id IN ({marks})"""),
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
