"""The store's guarantees: forgetting cascades, undo, edits, profile, crash repair."""

from __future__ import annotations

import pytest
from sqlalchemy import text


def test_forget_cascades_everywhere(store):
    mem, _ = store.remember("My locker code at the gym is 4711.")
    other, _ = store.remember("The gym opens at six in the morning.")
    assert store.forget([mem.id]) == 1
    assert store.get(mem.id) is None
    with store.read() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'locker'")
            ).scalar()
            == 0
        )
        assert conn.execute(text("SELECT count(*) FROM vector_outbox")).scalar() == 0
    assert not any(v.startswith(mem.id) for v in store.vectors.all_ids())
    assert all(h.id != mem.id for h in store.search("locker code gym", k=10))
    assert mem.id not in {m.id for m in store.iter_memories()}  # so never in training data
    assert store.get(other.id) is not None


def test_forgotten_content_is_not_reimported(store, tmp_path):
    f = tmp_path / "n.txt"
    f.write_text("The safe combination is 12-34-56.")
    report = store.import_paths([f])
    store.forget(report.memory_ids)
    f.write_text("The safe combination is 12-34-56.\n")  # touched file, same content
    again = store.import_paths([f])
    assert again.imported == 0 and store.count() == 0


def test_unknown_id_forgets_nothing(store):
    from memory import NotFound

    mem, _ = store.remember("Keep this one.")
    with pytest.raises(NotFound):
        store.forget([mem.id, "doesnotexist"])
    assert store.get(mem.id) is not None


def test_undo_forget_restores_same_memory(store):
    mem, _ = store.remember("We planted an apple tree in 2020.")
    removed = store.forget_returning([mem.id])
    store.restore(removed)
    back = store.get(mem.id)
    assert back is not None and back.text == mem.text and back.created_at == mem.created_at
    assert store.search("apple tree", k=1)[0].id == mem.id


def test_edit_reindexes(store):
    mem, _ = store.remember("Favourite colour: green.")
    store.update_text(mem.id, "Favourite colour: orange.")
    assert "orange" in store.search("favourite colour", k=1)[0].text
    with store.read() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'green'")
            ).scalar()
            == 0
        )


def test_profile_roundtrip_and_validation(store):
    from memory import BadInput

    store.profile_set("email", "a@example.org")
    store.profile_set("email", "b@example.org")
    assert [(f.key, f.value) for f in store.profile()] == [("email", "b@example.org")]
    with pytest.raises(BadInput):
        store.profile_set("favourite-food", "pizza")
    assert store.profile_unset("email") is True
    assert store.profile() == []


def test_crash_between_sqlite_and_vectors_is_repaired(memex_home, embedder):
    """Simulate a crash after the SQLite commit but before chromadb was written."""
    from memory import MemoryStore

    s = MemoryStore(memex_home, embedder=embedder)
    s.vectors.upsert = lambda *a, **k: (_ for _ in ()).throw(SystemExit("crash"))  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        s.remember("The spare tyre is in the garage loft.")
    s.close()

    fresh = MemoryStore(memex_home, embedder=embedder)
    assert fresh.health()["pending_vector_ops"] == 1
    hits = fresh.search("where is the spare tyre", k=1)  # replays the outbox first
    assert hits and hits[0].similarity is not None
    assert fresh.health()["ok"] is True
    fresh.close()


def test_doctor_repair_removes_orphans_and_fills_gaps(store):
    a, _ = store.remember("Orphan test: the bike lock key is blue.")
    b, _ = store.remember("Gap test: the bread maker is in the cupboard.")
    store.vectors.upsert(["ghost:0"], [store.embedder.embed_one("ghost")], ["ghost"])
    store.vectors.delete([f"{b.id}:0"])
    before = store.health()
    assert before["orphan_vectors"] == 1 and before["missing_vectors"] == 1 and not before["ok"]
    after = store.health(repair=True)
    assert (
        after["ok"]
        and after["repaired"]["orphans_removed"] == 1
        and after["repaired"]["vectors_added"] == 1
    )


def test_bad_remember_input(store):
    from memory import BadInput

    with pytest.raises(BadInput):
        store.remember("   ")
    with pytest.raises(BadInput):
        store.remember("x", kind="poem")
    with pytest.raises(BadInput):
        store.search("")


def test_large_index_keyword_path_prefers_all_terms(store, monkeypatch):
    """On big indexes the keyword side tries AND first, falling back to OR when it finds too
    little."""
    import memory.retrieval as retrieval

    monkeypatch.setattr(retrieval, "LARGE_INDEX_CHUNKS", 0)
    both = {
        store.remember(t)[0].id
        for t in (
            "The red kayak is stored in the boathouse.",
            "We painted the kayak red last summer.",
            "Red kayak rentals open in May.",
        )
    }
    store.remember("A red scarf hangs by the door.")
    store.remember("The kayak paddle is broken.")
    with store.read() as conn:
        assert {m for m, _ in retrieval._keyword_rows(conn, "red kayak")} == both  # AND sufficed
        assert len(retrieval._keyword_rows(conn, "scarf paddle")) == 2  # AND empty: OR fallback
    assert store.search("red kayak", k=1)[0].id in both
