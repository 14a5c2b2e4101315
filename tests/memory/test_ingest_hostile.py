"""Hostile files for the import pipeline: each is refused or skipped in one sentence, never a
traceback, never a hang, and never at the cost of the good files next to it."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest

from memory.errors import BadInput
from memory.importer import MAX_MEMORIES_PER_FILE, printable
from memory.store import parse_at

DEEP = "[" * 100_000 + "]" * 100_000


def _one_sentence(reason: str) -> None:
    assert reason and "Traceback" not in reason and "\n" not in reason


def test_deeply_nested_chat_export_is_one_error(store, tmp_path: Path) -> None:
    bad = tmp_path / "export.json"
    bad.write_text(DEEP)
    good = tmp_path / "note.txt"
    good.write_text("The spare key is under the blue flower pot.")
    report = store.import_paths([bad, good])
    assert report.imported == 1
    [err] = report.errors
    assert err["path"].endswith("export.json") and "nested too deeply" in err["reason"]
    _one_sentence(err["reason"])


def test_deeply_nested_jsonl_line_is_skipped_and_good_lines_imported(store, tmp_path: Path) -> None:
    src = tmp_path / "notes.jsonl"
    src.write_text(
        "\n".join(
            [
                json.dumps({"text": "I parked on level 3."}),
                DEEP,
                json.dumps({"text": "The dentist is on Friday."}),
            ]
        )
        + "\n"
    )
    report = store.import_paths([src])
    assert report.imported == 2
    [err] = report.errors
    assert (
        err["path"].endswith("notes.jsonl:2")
        and "line 2" in err["reason"]
        and "nested" in err["reason"]
    )
    assert {m.text for m in store.list(limit=10)} == {
        "I parked on level 3.",
        "The dentist is on Friday.",
    }


def test_odd_chat_export_shape_is_one_error(store, tmp_path: Path) -> None:
    odd = tmp_path / "chat.json"
    odd.write_text(json.dumps({"messages": [{"text": [["nested", "list"]], "from": "x"}]}))
    report = store.import_paths([odd])
    assert report.imported == 0 and len(report.errors) == 1
    _one_sentence(report.errors[0]["reason"])


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS refuses file names that are not UTF-8")
def test_non_utf8_file_names_are_imported_and_shown_escaped(store, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    odd = Path(os.fsdecode(bytes(folder) + b"/caf\xe9.txt"))
    odd.write_text("The cafe on the corner closes at six.")
    (folder / "plain.txt").write_text("My library card number ends in 42.")
    (folder / "empty.txt").write_text("")
    report = store.import_paths([folder])
    assert report.imported == 2  # the odd name does not stop the folder
    [skip] = report.skipped
    assert skip["path"].endswith("empty.txt")
    sources = {m.source for m in store.list(limit=10)}
    assert any(s.endswith("caf\\xe9.txt") for s in sources), sources
    for s in sources:
        s.encode("utf-8")  # storable and printable
    # given directly (unchanged now): reported with the escaped name, no exception
    again = store.import_paths([odd])
    assert again.skipped[0]["path"].endswith("caf\\xe9.txt")
    json.dumps(again.to_json(), ensure_ascii=False).encode("utf-8")


def test_printable_escapes_lone_surrogates() -> None:
    assert printable("plain") == "plain"
    assert printable("a\udcffb") == "a\\xffb"
    assert printable("a\ud800b").encode("utf-8")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_named_pipe_is_refused_at_once(store, tmp_path: Path) -> None:
    pipe = tmp_path / "notes.txt"
    os.mkfifo(pipe)
    result: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: result.update(report=store.import_paths([pipe])), daemon=True
    )
    worker.start()
    worker.join(timeout=60)
    if worker.is_alive():  # unblock the hung open() so the test run can end, then fail
        fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        pytest.fail("importing a named pipe hung")
    report = result["report"]
    assert report.imported == 0  # type: ignore[attr-defined]
    [err] = report.errors  # type: ignore[attr-defined]
    assert "not a regular file" in err["reason"]
    _one_sentence(err["reason"])


def test_device_is_refused(store) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    report = store.import_paths([Path("/dev/zero")])
    assert report.imported == 0 and "not a regular file" in report.errors[0]["reason"]


def test_file_with_too_many_sections_is_refused_before_embedding(store, tmp_path: Path) -> None:
    src = tmp_path / "headings.md"
    src.write_text("".join(f"# Heading {i}\nline {i}\n" for i in range(100_000)))
    calls: list[int] = []
    real = store.embedder.embed
    store.embedder.embed = lambda texts: calls.append(len(texts)) or real(texts)  # type: ignore[method-assign]
    try:
        report = store.import_paths([src])
    finally:
        store.embedder.embed = real  # type: ignore[method-assign]
    assert report.imported == 0 and calls == []
    [err] = report.errors
    assert "100,000 memories" in err["reason"] and f"{MAX_MEMORIES_PER_FILE:,}" in err["reason"]
    assert "--max-memories-per-file 100000" in err["reason"]
    _one_sentence(err["reason"])


def test_raised_limit_lets_a_big_file_in(store, tmp_path: Path) -> None:
    src = tmp_path / "few.md"
    src.write_text("".join(f"# Day {i}\nI walked {i} km.\n" for i in range(5)))
    assert store.import_paths([src], max_memories_per_file=4).errors
    report = store.import_paths([src], max_memories_per_file=5)
    assert report.imported == 5 and not report.errors


def test_empty_files_and_folders_are_reported(store, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    blank = tmp_path / "blank.md"
    blank.write_text("\n\n   \n")
    report = store.import_paths([empty, blank])
    assert report.imported == 0 and len(report.skipped) == 2
    assert all(s["kind"] == "nothing_to_import" and "empty" in s["reason"] for s in report.skipped)
    hollow = tmp_path / "hollow"
    hollow.mkdir()
    report = store.import_paths([hollow])
    assert (
        report.skipped[0]["kind"] == "nothing_to_import"
        and "no files" in report.skipped[0]["reason"]
    )


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "0001-01-01", "9999-12-31"]
)
def test_extreme_dates_are_one_sentence(value: str) -> None:
    with pytest.raises(BadInput) as info:
        parse_at(value)
    assert "outside the years" in str(info.value) and "\n" not in str(info.value)


def test_extreme_date_in_a_jsonl_line_is_a_bad_line(store, tmp_path: Path) -> None:
    src = tmp_path / "dates.jsonl"
    src.write_text(
        json.dumps({"text": "Ancient note.", "at": "0001-01-01T00:00:00+05:00"})
        + "\n"
        + json.dumps({"text": "Recent note.", "at": "2024-02-03"})
        + "\n"
    )
    report = store.import_paths([src])
    assert report.imported == 1 and "line 1" in report.errors[0]["reason"]


def test_text_with_undecodable_bytes_is_refused_and_nothing_is_lost(store) -> None:
    kept, _ = store.remember("My passport expires in 2031.")
    with pytest.raises(BadInput) as info:
        store.remember("bad \udcff bytes")
    assert "UTF-8" in str(info.value)
    assert [m.id for m in store.list(limit=10)] == [kept.id]
