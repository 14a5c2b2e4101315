"""Ingestion of every supported format, and every kind of bad input the foundation issue names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _write(p: Path, data: bytes | str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        p.write_text(data, encoding="utf-8")
    else:
        p.write_bytes(data)
    return p


def _make_pdf(path: Path, text: str, *, encrypt: bool = False) -> Path:
    """A real one-page PDF with a text layer, written by hand (no PDF library needed)."""
    from pypdf import PdfReader, PdfWriter

    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))
    if encrypt:
        reader = PdfReader(str(path))
        writer = PdfWriter()
        for page in reader.pages:
            writer.add_page(page)
        writer.encrypt("secret")
        with path.open("wb") as fh:
            writer.write(fh)
    return path


def test_formats_import_and_are_searchable(store, tmp_path):
    d = tmp_path / "docs"
    _write(d / "a.txt", "The boat is named Seagull and is moored in Kiel.")
    _write(
        d / "notes.md",
        "# 2021-05-01 Garden\n\nPlanted tomatoes and basil.\n\n## 2021-06-10 Trip\n\nVisited Oslo "
        "by ferry.",
    )
    _write(
        d / "mail.eml",
        "From: Ana <ana@example.org>\nTo: me@example.org\nSubject: Dinner\n"
        "Date: Tue, 02 Mar 2021 18:00:00 +0000\n\nDinner at Casa Ana on Friday at eight.\n",
    )
    _write(
        d / "sub" / "chat.json",
        json.dumps(
            {
                "name": "Family",
                "messages": [
                    {
                        "date": "2022-01-01T10:00:00",
                        "from": "Mum",
                        "text": "Happy new year, the lentils are ready",
                    }
                ],
            }
        ),
    )
    _make_pdf(d / "doc.pdf", "The warranty for the dishwasher ends in 2027.")
    report = store.import_paths([d])
    assert not report.errors, report.errors
    assert report.imported == 6  # txt, 2 md sections, eml, chat day, pdf
    assert store.search("dishwasher warranty", k=1)[0].text.startswith("The warranty")
    assert "Oslo" in store.search("ferry trip", k=1)[0].text
    garden = store.search("tomatoes", k=1)[0]
    assert garden.at is not None and garden.at.year == 2021 and garden.at.month == 5
    mail = store.search("dinner at Casa Ana", k=1)[0]
    assert mail.at is not None and mail.at.year == 2021


def test_folder_import_is_incremental(store, tmp_path):
    d = tmp_path / "notes"
    _write(d / "one.txt", "Alpha note about the lighthouse.")
    _write(d / "two.txt", "Beta note about the harbour.")
    assert store.import_paths([d]).imported == 2
    again = store.import_paths([d])
    assert again.imported == 0
    assert {s["reason"] for s in again.skipped} == {"unchanged since the last import"}
    _write(d / "two.txt", "Beta note, rewritten: the harbour was rebuilt.")
    changed = store.import_paths([d])
    assert changed.imported == 1
    assert store.count() == 2  # the old version of two.txt was replaced, not duplicated
    assert "rebuilt" in store.search("harbour", k=1)[0].text


def test_duplicate_content_is_stored_once(store, tmp_path):
    _write(tmp_path / "a.txt", "Same words here.")
    _write(tmp_path / "b.txt", "Same   words here.")
    store.import_paths([tmp_path / "a.txt", tmp_path / "b.txt"])
    assert store.count() == 1
    _, created = store.remember("same words here.")
    assert created is False


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("corrupt.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage garbage", "PDF"),
        ("binary.txt", bytes(range(256)) * 40, "binary"),
        ("latin1.txt", "Caf\xe9 cr\xe8me".encode("latin-1"), "UTF-8"),
    ],
)
def test_bad_files_are_reported_and_nothing_is_lost(store, tmp_path, name, data, reason):
    store.remember("Keep me: the spare key is under the blue pot.")
    report = store.import_paths([_write(tmp_path / name, data)])
    assert report.imported == 0
    assert len(report.errors) == 1 and reason in report.errors[0]["reason"]
    assert store.count() == 1 and "spare key" in store.search("spare key", k=1)[0].text


def test_encrypted_pdf_is_refused(store, tmp_path):
    report = store.import_paths([_make_pdf(tmp_path / "locked.pdf", "secret", encrypt=True)])
    assert report.imported == 0 and "encrypted" in report.errors[0]["reason"]


def test_empty_unknown_and_missing(store, tmp_path):
    report = store.import_paths(
        [
            _write(tmp_path / "empty.txt", ""),
            _write(tmp_path / "pic.xyz", b"x"),
            tmp_path / "nope.txt",
        ]
    )
    reasons = " | ".join(s["reason"] for s in report.skipped)
    assert "empty" in reasons and "unsupported file type .xyz" in reasons
    assert "does not exist" in report.errors[0]["reason"]


def test_huge_file_is_refused_in_one_sentence(store, tmp_path):
    big = tmp_path / "big.txt"
    with big.open("wb") as fh:  # 50 MB of text
        line = b"all work and no play makes jack a dull boy\n"
        fh.write(line * (50 * 1024 * 1024 // len(line)))
    report = store.import_paths([big])
    assert report.imported == 0 and "import limit" in report.errors[0]["reason"]


def test_malformed_jsonl_line_is_reported_rest_imported(store, tmp_path):
    lines = [
        json.dumps({"text": "First good line about kayaks.", "at": "2020-01-02"}),
        "{not json",
        json.dumps({"text": "", "kind": "note"}),
        json.dumps({"text": "Bad kind line", "kind": "poem"}),
        json.dumps({"text": "Second good line about canoes.", "kind": "fact", "source": "diary"}),
    ]
    report = store.import_paths([_write(tmp_path / "m.jsonl", "\n".join(lines))])
    assert report.imported == 2
    assert sorted(e["path"].rsplit(":", 1)[1] for e in report.errors) == ["2", "3", "4"]
    hit = store.search("canoes", k=1)[0]
    assert hit.source == "diary" and hit.kind == "fact"
