"""The context index: a chat turn is found by its neighbours' words, and forgets with them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from memory.retrieval import RetrievalOptions

ROWS = [
    ("Ana", "We drove up to the lake for the long weekend."),
    ("Ben", "Nice! What was the best part?"),
    ("Ana", "Lying on the pier at night counting shooting stars."),
    ("Ben", "I have to try that some time."),
    ("Ana", "My sister is visiting next week, by the way."),
    ("Ben", "Say hi from me."),
]


def _import(store, tmp_path: Path, rows=ROWS, session: str = "lake"):
    path = tmp_path / f"{session}.jsonl"
    path.write_text("\n".join(json.dumps(
        {"text": t, "kind": "chat", "speaker": sp, "session": session, "at": "2023-08-14"})
        for sp, t in rows) + "\n", encoding="utf-8")
    return store.import_paths([path])


def _context_rows(store) -> list[tuple[str, str, str]]:
    """In the order of the turns (a rewritten row gets a new id)."""
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT t.text, t.prev, t.next FROM turn_context t "
            "JOIN memories m ON m.id = t.memory_id ORDER BY m.rowid"))]


def test_context_rows_hold_the_neighbouring_turns(store, tmp_path):
    _import(store, tmp_path)
    rows = _context_rows(store)
    assert len(rows) == len(ROWS)
    assert rows[0] == (ROWS[0][1], "", ROWS[1][1])
    assert rows[2] == (ROWS[2][1], ROWS[1][1], ROWS[3][1])
    # One more turn said later: it gets a row, and the turn before it learns its next turn.
    store.remember("Will do!", kind="chat", speaker="Ana", session="lake",
                   at=datetime(2023, 8, 14, 23, tzinfo=UTC))
    assert _context_rows(store)[-2:] == [
        (ROWS[5][1], ROWS[4][1], "Will do!"), ("Will do!", ROWS[5][1], "")]


def test_a_turn_is_found_by_the_words_of_the_turn_before_it(store, tmp_path):
    from memory import summaries

    report = _import(store, tmp_path)
    answer = report.memory_ids[2]  # never says "best" or "part": the turn it answers does
    with store.read() as conn:
        own = conn.execute(text(
            "SELECT c.memory_id FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
            "WHERE chunks_fts MATCH '\"best\" AND \"part\"'")).scalars().all()
        found = summaries.search_context(conn, '"best" OR "part"', '"best" AND "part"', 10,
                                         large=10**6, min_and_hits=1)
    assert answer not in own
    # the turn that holds the words ranks first, the turns next to it follow
    assert found[0] == report.memory_ids[1] and set(found[1:3]) == {report.memory_ids[0], answer}
    hits = store.search("the best part", k=3, options=RetrievalOptions(neighbours=False))
    assert answer in [h.id for h in hits]


def test_forgetting_a_turn_removes_its_words_from_its_neighbours(store, tmp_path):
    report = _import(store, tmp_path)
    store.forget([report.memory_ids[2]])
    rows = _context_rows(store)
    assert len(rows) == len(ROWS) - 1
    assert all("shooting stars" not in " ".join(r) for r in rows)
    assert (ROWS[1][1], ROWS[0][1], ROWS[3][1]) in rows  # the gap closes
    store.forget(report.memory_ids[:2] + report.memory_ids[3:])
    assert _context_rows(store) == []


def test_migration_indexes_turns_stored_before_it(tmp_path, embedder):
    from memory import MemoryStore
    from memory.migrations import MIGRATIONS

    db = tmp_path / "old" / "memex.db"
    db.parent.mkdir()
    engine = create_engine(f"sqlite:///{db}")
    names = [name for name, _ in MIGRATIONS]
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        )
        for name, fn in MIGRATIONS[: names.index("m006_turn_context")]:
            fn(conn)
            conn.execute(text("INSERT INTO _migrations VALUES (:n, 'x')"), {"n": name})
        for i, (sp, t) in enumerate(ROWS[:3]):
            conn.execute(text(
                "INSERT INTO memories(id, kind, text, content_hash, created_at, speaker, session) "
                "VALUES (:i, 'chat', :t, :h, :c, :s, 'lake')"),
                {"i": f"m{i}", "t": t, "h": f"h{i}", "c": f"2023-08-14T10:0{i}:00+00:00", "s": sp})
    engine.dispose()
    store = MemoryStore(db.parent, embedder=embedder)
    try:
        rows = _context_rows(store)
        assert rows == [(ROWS[0][1], "", ROWS[1][1]), (ROWS[1][1], ROWS[0][1], ROWS[2][1]),
                        (ROWS[2][1], ROWS[1][1], "")]
    finally:
        store.close()
