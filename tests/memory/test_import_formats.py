"""Obsidian vaults, mbox mailboxes and Google Keep Takeout notes, from fixtures written after
each format's documentation: imported, bad parts reported by name, re-imports incremental."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memory.ingest.obsidian import linked_notes, wikilinks


def by_name(report, name: str, kind: str = "errors") -> list[dict]:
    return [e for e in getattr(report, kind) if Path(e["path"].split(":")[0]).name == name]


def texts(store) -> dict[str, str]:
    return {m.id: m.text for m in store.list(limit=1000)}


# -- Obsidian ---------------------------------------------------------------------------------


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    v = tmp_path / "My Vault"
    (v / ".obsidian").mkdir(parents=True)
    (v / ".obsidian" / "app.json").write_text('{"attachmentFolderPath": "attachments"}')
    (v / ".obsidian" / "workspace.json").write_text('{"main": {}}')
    (v / "Daily").mkdir()
    (v / "Daily" / "2024-03-01.md").write_text(
        "---\ntags: [journal, health]\ndate: 2024-03-01\naliases: [March first]\nmood: good\n---\n"
        "Went running with [[Ana]] along the river. #running\n"
        "See [[Projects/Garden plan|the garden]] and ![[photo.png]].\n"
        "```\n#not-a-tag [[not a link]]\n```\n",
        encoding="utf-8",
    )
    (v / "Ana.md").write_text(
        "# Ana\nAna is my sister; she lives in Lisbon. #family/close\n", encoding="utf-8"
    )
    (v / "Projects").mkdir()
    (v / "Projects" / "Garden plan.md").write_text(
        "Tomatoes go in the south bed this year.\n", encoding="utf-8"
    )
    (v / "Broken.md").write_text(
        "---\ntags: [unclosed\n---\nThe body of a note with broken properties.\n", encoding="utf-8"
    )
    (v / "attachments").mkdir()
    (v / "attachments" / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (v / "Canvas.canvas").write_text('{"nodes": []}')
    (v / ".trash").mkdir()
    (v / ".trash" / "old.md").write_text("deleted note")
    return v


def test_obsidian_vault(store, vault: Path):
    report = store.import_paths([vault])
    assert report.imported == 4, (report.errors, report.skipped)
    mems = texts(store)
    daily = next(t for t in mems.values() if t.startswith("2024-03-01"))
    assert "Tags: #journal #health #running" in daily
    assert "(also: March first)" in daily and "mood: good" in daily
    assert "Links: [[Ana]], [[Garden plan]]" in daily
    assert "#not-a-tag" not in daily.split("\n\n")[0]
    assert wikilinks(daily) == ["Ana", "Garden plan"]
    daily_mem = next(m for m in store.list(limit=100) if m.text == daily)
    assert daily_mem.at == datetime(2024, 3, 1, tzinfo=UTC)
    ana = next(t for t in mems.values() if "Lisbon" in t)
    assert "Tags: #family/close" in ana

    # links are between memories: each name resolves to the memory its note became
    with store.read() as conn:
        links = linked_notes(conn, daily, vault)
    ana_id = next(i for i, t in mems.items() if "Lisbon" in t)
    garden_id = next(i for i, t in mems.items() if "Tomatoes" in t)
    assert links == {"Ana": [ana_id], "Garden plan": [garden_id]}

    # the broken front matter is reported by note name, its body still imported
    bad = by_name(report, "Broken.md")
    assert len(bad) == 1 and "front matter is not valid YAML" in bad[0]["reason"]
    assert any("broken properties" in t for t in mems.values())
    # attachments and settings are not notes
    assert any(
        "attachment in an Obsidian vault" in s["reason"]
        for s in by_name(report, "photo.png", "skipped")
    )
    assert by_name(report, "Canvas.canvas", "skipped")
    assert not any(
        ".obsidian" in (m.source or "") or ".trash" in (m.source or "")
        for m in store.list(limit=100)
    )

    # incremental: nothing changed, nothing imported; one changed note is re-imported alone
    again = store.import_paths([vault])
    assert (
        again.imported == 0 and len([s for s in again.skipped if "unchanged" in s["reason"]]) == 4
    )
    (vault / "Ana.md").write_text(
        "# Ana\nAna is my sister; she moved to Porto. #family\n", encoding="utf-8"
    )
    third = store.import_paths([vault])
    assert third.imported == 1
    now = texts(store)
    assert any("Porto" in t for t in now.values()) and not any("Lisbon" in t for t in now.values())
    assert len(now) == 4


# -- mbox ----------------------------------------------------------------------------------

THUNDERBIRD_INBOX = (
    b"From - Mon Mar  4 09:00:00 2024\n"
    b"X-Mozilla-Status: 0001\n"
    b"From: Alice Example <alice@example.org>\n"
    b"To: me@example.org\n"
    b"Subject: Dinner on Friday\n"
    b"Date: Mon, 04 Mar 2024 09:00:00 +0000\n"
    b"Message-ID: <1@example.org>\n"
    b"\n"
    b"Shall we have dinner at Casa Lisboa on Friday?\n"
    b">From the menu, the bacalhau looks great.\n"
    b"\n"
    b"From - Tue Mar  5 10:00:00 2024\n"
    b"this line is not a header and there is no message here\n"
    b"\n"
    b"From - Wed Mar  6 11:00:00 2024\n"
    b"From: Bob <bob@example.org>\n"
    b"To: me@example.org\n"
    b"Subject: Climbing gym\n"
    b"Date: Wed, 06 Mar 2024 11:00:00 +0100\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/alternative; boundary="b1"\n'
    b"\n"
    b"--b1\n"
    b"Content-Type: text/html; charset=utf-8\n"
    b"\n"
    b"<html><body><p>The climbing gym opens at <b>7 am</b> on weekdays.</p></body></html>\n"
    b"--b1--\n"
)

TAKEOUT = (
    b"From 1790000000000000001@xxx Thu Feb 01 08:00:00 +0000 2024\n"
    b"X-GM-THRID: 1790000000000000001\n"
    b"X-Gmail-Labels: Inbox,Important,Travel\n"
    b"From: Airline <noreply@airline.example>\n"
    b"Subject: Your flight to Porto\n"
    b"Date: Thu, 01 Feb 2024 08:00:00 +0000\n"
    b'Content-Type: text/plain; charset="UTF-8"\n'
    b"\n"
    b"Flight TP123 departs 14 March at 07:35.\n"
    b"\n"
    b"From 1790000000000000002@xxx Thu Feb 01 09:00:00 +0000 2024\n"
    b"X-Gmail-Labels: Spam\n"
    b"From: Prize <win@spam.example>\n"
    b"Subject: You won\n"
    b"Date: Thu, 01 Feb 2024 09:00:00 +0000\n"
    b"\n"
    b"Click here.\n"
)


def test_mbox_mailboxes(store, tmp_path: Path):
    profile = tmp_path / "Mail" / "Local Folders"
    profile.mkdir(parents=True)
    (profile / "Inbox").write_bytes(THUNDERBIRD_INBOX)
    (profile / "Inbox.msf").write_text('// <!-- <mdb:mork:z v="1.4"/> -->')
    takeout = tmp_path / "Takeout" / "Mail" / "All mail Including Spam and Trash.mbox"
    takeout.parent.mkdir(parents=True)
    takeout.write_bytes(TAKEOUT)

    report = store.import_paths([tmp_path / "Mail", takeout])
    assert report.imported == 3, (report.errors, report.skipped)
    mems = list(texts(store).values())
    dinner = next(t for t in mems if "Dinner on Friday" in t)
    assert "From: Alice Example <alice@example.org>" in dinner
    assert "\nFrom the menu, the bacalhau" in dinner  # mboxrd quoting undone
    gym = next(t for t in mems if "Climbing gym" in t)
    assert "opens at 7 am on weekdays" in gym and "<b>" not in gym
    flight = next(t for t in mems if "Porto" in t)
    assert "Labels: Inbox, Important, Travel" in flight
    assert not any("You won" in t for t in mems)  # Takeout's Spam label is left out
    when = {m.text.split("\n")[0]: m.at for m in store.list(limit=10)}
    assert when["Subject: Dinner on Friday"] == datetime(2024, 3, 4, 9, tzinfo=UTC)

    bad = by_name(report, "Inbox")
    assert len(bad) == 1 and bad[0]["path"].endswith("Inbox:12")
    assert bad[0]["reason"].startswith("line 12: message 2 is not a mail message")
    assert by_name(report, "Inbox.msf", "skipped")

    again = store.import_paths([tmp_path / "Mail", takeout])
    assert (
        again.imported == 0 and len([s for s in again.skipped if "unchanged" in s["reason"]]) == 2
    )

    # new mail arrives: only it is imported, the messages already stored keep their ids
    before = {m.id for m in store.list(limit=100)}
    with (profile / "Inbox").open("ab") as fh:
        fh.write(
            b"\nFrom - Thu Mar  7 08:00:00 2024\nFrom: Carol <carol@example.org>\n"
            b"Subject: Book club\nDate: Thu, 07 Mar 2024 08:00:00 +0000\n\nWe read Pessoa next.\n"
        )
    grown = store.import_paths([tmp_path / "Mail"])
    assert grown.imported == 1
    after = {m.id for m in store.list(limit=100)}
    assert before < after and len(after) == 4


# -- Google Keep ----------------------------------------------------------------------------


def _keep_note(**fields) -> str:
    note = {
        "color": "DEFAULT",
        "isTrashed": False,
        "isPinned": False,
        "isArchived": False,
        "title": "",
        "userEditedTimestampUsec": 1709550000000000,
        "createdTimestampUsec": 1709540000000000,
    }
    note.update(fields)
    return json.dumps(note)


def test_google_keep_takeout(store, tmp_path: Path):
    keep = tmp_path / "Takeout" / "Keep"
    keep.mkdir(parents=True)
    (keep / "Shopping.json").write_text(
        _keep_note(
            title="Shopping",
            listContent=[
                {"text": "oat milk", "isChecked": False},
                {"text": "coffee", "isChecked": True},
            ],
            labels=[{"name": "home"}],
        )
    )
    (keep / "Shopping.html").write_text(
        "<html><body><div class='title'>Shopping</div></body></html>"
    )
    (keep / "Idea.json").write_text(
        _keep_note(
            title="Gift idea",
            textContent="A pottery class for Ana's birthday.",
            annotations=[
                {
                    "description": "",
                    "source": "WEBLINK",
                    "title": "Pottery studio",
                    "url": "https://pottery.example/classes",
                }
            ],
            attachments=[{"filePath": "img.jpeg", "mimetype": "image/jpeg"}],
        )
    )
    (keep / "img.jpeg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(32))
    (keep / "Trashed.json").write_text(_keep_note(title="Old", textContent="gone", isTrashed=True))
    (keep / "Broken.json").write_text('{"title": "half a note", "textContent": ')
    (keep / "Weird.json").write_text(_keep_note(title=5, textContent="x"))
    (keep / "Labels.txt").write_text("home\nwork\n")

    report = store.import_paths([tmp_path / "Takeout"])
    assert report.imported == 2, (report.errors, report.skipped)
    mems = list(texts(store).values())
    shopping = next(t for t in mems if t.startswith("Shopping"))
    assert "[ ] oat milk" in shopping and "[x] coffee" in shopping and "Labels: home" in shopping
    idea = next(t for t in mems if t.startswith("Gift idea"))
    assert "Link: Pottery studio (https://pottery.example/classes)" in idea
    at = next(m.at for m in store.list(limit=10) if m.text.startswith("Gift idea"))
    assert at == datetime.fromtimestamp(1709540000, tz=UTC)

    assert "bad JSON" in by_name(report, "Broken.json")[0]["reason"]
    assert '"title" is not a string' in by_name(report, "Weird.json")[0]["reason"]
    skipped = {Path(s["path"]).name: s["reason"] for s in report.skipped}
    assert "trash" in skipped["Trashed.json"] and "HTML copy" in skipped["Shopping.html"]
    assert "labels" in skipped["Labels.txt"] and "img.jpeg" in skipped

    again = store.import_paths([tmp_path / "Takeout"])
    assert again.imported == 0
    assert len([s for s in again.skipped if "unchanged" in s["reason"]]) >= 2
