"""Google Keep notes from a Takeout export (`Takeout/Keep/*.json`, one note a file).

A note is a JSON object with `title`, `textContent` (or `listContent`: a checklist of
{"text", "isChecked"}), `labels` ([{"name"}]), `annotations` (links: {"url", "title"}),
`attachments` ({"filePath", "mimetype"}), `isTrashed`, `isArchived`, `isPinned`, and times in
microseconds since 1970 (`createdTimestampUsec`, `userEditedTimestampUsec`). Takeout also
writes an `.html` copy of every note and the attachment files: both are skipped, as are
notes in Keep's trash. A file that is not such a note is reported by name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memory.ingest.parsers import ParsedDoc, ParseError, SkipFile, read_text

_MARKERS = (b'"userEditedTimestampUsec"', b'"createdTimestampUsec"', b'"isTrashed"')


def _looks_like_keep(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(65536)
    except OSError:
        return False
    return sum(m in head for m in _MARKERS) >= 2 and (
        b'"textContent"' in head or b'"listContent"' in head or b'"title"' in head
    )


def detect(path: Path) -> Callable[[Path], list[ParsedDoc]] | None:
    suffix = path.suffix.lower()
    in_keep = path.parent.name.lower() == "keep"
    if in_keep and path.name == "Labels.txt":
        return skip_label_list
    if suffix == ".json":
        if _looks_like_keep(path):
            return parse_keep_note
        if in_keep:
            return parse_keep_note  # in Keep's folder: report a damaged note instead of guessing
        return None
    if (
        suffix == ".html"
        and path.with_suffix(".json").is_file()
        and _looks_like_keep(path.with_suffix(".json"))
    ):
        return skip_html_copy
    return None


def skip_label_list(path: Path) -> list[ParsedDoc]:
    raise SkipFile(f"{path.name} lists Keep's labels; each note carries its own.")


def skip_html_copy(path: Path) -> list[ParsedDoc]:
    raise SkipFile(
        f"{path.name} is Keep's HTML copy of {path.with_suffix('.json').name}, which is imported."
    )


def _time(usec: Any) -> datetime | None:
    if isinstance(usec, bool) or not isinstance(usec, (int, float)) or usec <= 0:
        return None
    try:
        return datetime.fromtimestamp(usec / 1_000_000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def note_text(note: dict[str, Any]) -> str:
    """The note as text; ValueError naming the field when its shape is wrong."""
    parts: list[str] = []
    title = note.get("title") or ""
    if not isinstance(title, str):
        raise ValueError('"title" is not a string')
    if title.strip():
        parts.append(title.strip())
    body = note.get("textContent") or ""
    if not isinstance(body, str):
        raise ValueError('"textContent" is not a string')
    if body.strip():
        parts.append(body.strip())
    items = note.get("listContent") or []
    if not isinstance(items, list):
        raise ValueError('"listContent" is not a list')
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("text"), str) and item["text"].strip():
            parts.append(f"[{'x' if item.get('isChecked') else ' '}] {item['text'].strip()}")
    labels = [
        str(lab.get("name"))
        for lab in note.get("labels") or ()
        if isinstance(lab, dict) and lab.get("name")
    ]
    if labels:
        parts.append("Labels: " + ", ".join(labels))
    for ann in note.get("annotations") or ():
        if isinstance(ann, dict) and ann.get("url"):
            parts.append(f"Link: {ann.get('title') or ann['url']} ({ann['url']})")
    return "\n".join(parts)


def parse_keep_note(path: Path) -> list[ParsedDoc]:
    try:
        note = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"{path.name} is not a valid Keep note (bad JSON: {exc.msg} at line {exc.lineno})."
        ) from exc
    if not isinstance(note, dict):
        raise ParseError(f"{path.name} is not a Keep note (a JSON object is expected).")
    if note.get("isTrashed") is True:
        raise SkipFile(f"{path.name} is in Keep's trash.")
    try:
        text = note_text(note)
    except ValueError as exc:
        raise ParseError(f"{path.name} is not a valid Keep note ({exc}).") from exc
    if not text.strip():
        raise SkipFile(f"{path.name} is an empty Keep note.")
    at = _time(note.get("createdTimestampUsec")) or _time(note.get("userEditedTimestampUsec"))
    return [ParsedDoc(text=text, kind="note", at=at, title=str(note.get("title") or path.stem))]
