"""Recall on the evaluation persona: the right memory in the top 5, updated facts above stale
ones."""

from __future__ import annotations

from tests.conftest import PERSONA


def _import_persona(store) -> dict[str, str]:
    report = store.import_paths([PERSONA / "notes.jsonl"])
    assert report.imported == 32 and not report.errors
    by_text = {m.text: m.id for m in store.iter_memories()}
    import json

    return {
        json.loads(line)["key"]: by_text[json.loads(line)["text"]]
        for line in (PERSONA / "notes.jsonl").read_text(encoding="utf-8").splitlines()
    }


def test_recall_at_5_and_updates_rank_first(store, persona_questions):
    ids = _import_persona(store)
    hits_ok, stale_ok, stale_total, misses = 0, 0, 0, []
    for q in persona_questions:
        results = [h.id for h in store.search(q["q"], k=5)]
        expected = [ids[k] for k in q["expect"]]
        if any(e in results for e in expected):
            hits_ok += 1
        else:
            misses.append(q["q"])
        for key in q["stale"]:
            stale_total += 1
            stale_id = ids[key]
            first = (
                min(results.index(e) for e in expected if e in results)
                if any(e in results for e in expected)
                else 99
            )
            if stale_id not in results or results.index(stale_id) > first:
                stale_ok += 1
    recall = hits_ok / len(persona_questions)
    assert recall >= 0.9, f"recall@5 {recall:.2f}; missed: {misses}"
    assert stale_ok == stale_total, "an outdated fact ranked above the one that replaced it"


def test_supersession_marks_old_facts(store):
    ids = _import_persona(store)
    assert store.get(ids["hamburg_move"]).superseded_by == ids["lisbon_move"]
    assert store.get(ids["berlin_move"]).superseded_by == ids["lisbon_move"]
    assert store.get(ids["lisbon_move"]).superseded_by is None
    assert store.get(ids["phone_2016"]).superseded_by == ids["phone_2022"]
    assert store.get(ids["spreewerk_job"]).superseded_by == ids["atlantico_job"]
    assert store.get(ids["promotion"]).superseded_by == ids["atlantico_job"]
    # superseded, not deleted: the past is still searchable
    past = [h.id for h in store.search("Where did I live in Berlin?", k=5)]
    assert ids["berlin_move"] in past


def test_forgetting_the_newer_fact_restores_the_older(store):
    ids = _import_persona(store)
    store.forget([ids["phone_2022"]])
    assert store.get(ids["phone_2016"]).superseded_by is None
    assert ids["phone_2022"] not in [h.id for h in store.search("phone number", k=10)]
