"""Chat turns as memories: speaker and session from every chat importer, searchable by speaker."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, text

ANDROID = (
    "12/30/23, 9:41 PM - Messages and calls are end-to-end encrypted. "
    "No one outside of this chat can read them.\n"
    """12/30/23, 9:41 PM - Ana Lima: Did you book the ferry to Tallinn?
12/30/23, 9:43 PM - Ben: Yes! Friday at 8, and I got us a cabin
with a window this time
12/31/23, 10:02 AM - Ana Lima: <Media omitted>
12/31/23, 10:05 AM - Ana Lima: Thanks!
"""
)

IOS = """[31.12.23, 21:41:05] Carla: Wir haben die Wohnung in Leipzig bekommen!
[31.12.23, 21:42:10] Dmitri: Glückwunsch! Wann zieht ihr um?
[01.01.24, 09:15:00] Carla: Im März, nach dem Umbau.
"""


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_whatsapp_android_export_becomes_turns(store, tmp_path):
    f = tmp_path / "WhatsApp Chat with Ana Lima.txt"
    f.write_text(ANDROID, encoding="utf-8")
    report = store.import_paths([f])
    assert (
        not report.errors and report.imported == 3
    )  # the system line and the media line are skipped
    turns = sorted(store.iter_memories(), key=lambda m: m.when)
    assert [t.speaker for t in turns] == ["Ana Lima", "Ben", "Ana Lima"]
    assert turns[1].text == "Yes! Friday at 8, and I got us a cabin\nwith a window this time"
    assert turns[0].at.isoformat().startswith("2023-12-30T21:41")
    assert turns[0].session == "Ana Lima 2023-12-30" and turns[2].session == "Ana Lima 2023-12-31"
    assert all(t.kind == "chat" for t in turns)
    hit = store.search("a cabin with a window", k=1)[0]
    assert hit.speaker == "Ben" and hit.session == "Ana Lima 2023-12-30"


def test_whatsapp_ios_export_day_first_24h(store, tmp_path):
    f = tmp_path / "_chat.txt"
    f.write_text(IOS, encoding="utf-8")
    report = store.import_paths([f])
    assert report.imported == 3
    first = min(store.iter_memories(), key=lambda m: m.when)
    assert first.speaker == "Carla" and first.at.isoformat().startswith("2023-12-31T21:41:05")
    assert {m.at.date().isoformat() for m in store.iter_memories()} == {"2023-12-31", "2024-01-01"}


def test_jsonl_speaker_session_and_repeated_turns(store, tmp_path):
    f = _jsonl(
        tmp_path / "chat.jsonl",
        [
            {
                "text": "I adopted a beagle called Rex.",
                "kind": "chat",
                "speaker": "Ana",
                "session": "s1",
                "at": "2023-05-02",
            },
            {
                "text": "Thanks!",
                "kind": "chat",
                "speaker": "Ben",
                "session": "s1",
                "at": "2023-05-02",
            },
            {
                "text": "Thanks!",
                "kind": "chat",
                "speaker": "Ben",
                "session": "s2",
                "at": "2023-06-09",
            },
            {
                "text": "I bought a violin.",
                "kind": "chat",
                "speaker": "Ben",
                "session": "s2",
                "at": "2023-06-09",
            },
            {"text": "A plain note without a speaker."},
        ],
    )
    report = store.import_paths([f])
    assert report.imported == 5 and not report.errors  # the same words in another session are kept
    hits = store.search("Which dog did Ana adopt?", k=3)
    assert hits[0].speaker == "Ana" and hits[0].session == "s1"
    only_ben = store.search("dog", k=10, speaker="ben")
    assert only_ben and all(h.speaker == "Ben" for h in only_ben)
    assert store.search("dog", k=3)  # the old signature still works
    as_json = hits[0].to_json()
    assert as_json["speaker"] == "Ana" and as_json["session"] == "s1"


def test_telegram_export_one_turn_per_message(store, tmp_path):
    f = tmp_path / "chat.json"
    f.write_text(
        json.dumps(
            {
                "name": "Family",
                "messages": [
                    {
                        "date": "2022-01-01T10:00:00",
                        "from": "Mum",
                        "text": "Happy new year, the lentils are ready",
                    },
                    {
                        "date": "2022-01-01T10:05:00",
                        "from": "Tom",
                        "text": [{"type": "bold", "text": "Coming"}, " now"],
                    },
                ],
            }
        ),
        encoding="utf-8",
    )
    report = store.import_paths([f])
    assert report.imported == 2
    by_speaker = {m.speaker: m for m in store.iter_memories()}
    assert (
        by_speaker["Tom"].text == "Coming now" and by_speaker["Mum"].session == "Family 2022-01-01"
    )


def test_remember_with_speaker_keeps_fields_through_edit(store):
    mem, created = store.remember(
        "We should hike the Rota Vicentina in spring.",
        kind="chat",
        speaker="Ana",
        session="trip planning",
    )
    assert created and mem.speaker == "Ana"
    edited = store.update_text(mem.id, "We should hike the Rota Vicentina in April.")
    assert edited.speaker == "Ana" and edited.session == "trip planning"


def test_migration_adds_columns_to_an_older_database(tmp_path, embedder):
    from memory import MemoryStore
    from memory.migrations import MIGRATIONS

    db = tmp_path / "old" / "memex.db"
    db.parent.mkdir()
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        )
        for name, fn in MIGRATIONS[:2]:
            fn(conn)
            conn.execute(text("INSERT INTO _migrations VALUES (:n, 'x')"), {"n": name})
        conn.execute(
            text(
                "INSERT INTO memories(id, kind, text, content_hash, created_at) "
                "VALUES ('m1', 'note', 'old note', 'h1', '2020-01-01T00:00:00+00:00')"
            )
        )
    engine.dispose()
    store = MemoryStore(db.parent, embedder=embedder)
    try:
        old = store.get("m1")
        assert old is not None and old.speaker is None and old.session is None
        with store.read() as conn:
            names = [r[0] for r in conn.execute(text("SELECT name FROM _migrations ORDER BY name"))]
        assert {"m003_chat_turns", "m004_session_units"} <= set(names)
    finally:
        store.close()


def test_session_units_point_to_turns_and_follow_forget(store, tmp_path):
    rows = [
        {"text": t, "kind": "chat", "speaker": sp, "session": "camping", "at": "2023-07-01"}
        for sp, t in [
            ("Ana", "We finally went camping by the lake."),
            ("Ben", "How was the weather?"),
            ("Ana", "Rainy on Saturday, but the kids loved the canoe."),
            ("Ben", "Did you cook outside?"),
            ("Ana", "Yes, marshmallows over the fire every night."),
            ("Ben", "Sounds perfect."),
            ("Ana", "Next year we want to try the mountains."),
        ]
    ]
    report = store.import_paths([_jsonl(tmp_path / "camp.jsonl", rows)])
    assert report.imported == 7
    with store.read() as conn:
        units = conn.execute(
            text("SELECT turn_ids, text FROM session_units WHERE session='camping' ORDER BY ord")
        ).all()
    covered = [i for r in units for i in json.loads(r[0])]
    assert (
        sorted(covered) == sorted(report.memory_ids)
        and "Ana: We finally went camping" in units[0][1]
    )
    # words spread over several turns of one exchange: every hit is a stored turn
    hits = store.search("canoe and marshmallows on the camping trip", k=5)
    assert hits and all(store.get(h.id) is not None for h in hits)
    assert {h.text for h in hits[:3]} & {
        "Rainy on Saturday, but the kids loved the canoe.",
        "Yes, marshmallows over the fire every night.",
    }
    store.forget(report.memory_ids)
    with store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM session_units")).scalar() == 0
