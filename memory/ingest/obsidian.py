"""Obsidian vaults: a folder with `.obsidian/` in it, notes as Markdown files.

Per Obsidian's documentation (Properties, Tags, Internal links):
- YAML front matter between `---` lines at the top holds properties; `tags`, `aliases` and
  `date`/`created` are used, others are kept as "key: value" lines.
- Tags are `tags:` in the front matter (a list or a comma/space separated string) and inline
  `#tag` / `#nested/tag` in the body (never inside code, never a heading).
- `[[Note]]`, `[[Note|shown text]]`, `[[Note#Heading]]` link notes; `![[file.png]]` embeds an
  attachment. Links stay in the text as written, plus a `Links:` line; `linked_notes` turns
  them into the ids of the memories those notes became.
- `.obsidian/` (settings), `.trash/` and every non-Markdown file (attachments) are skipped.

Re-importing is incremental through the importer: unchanged notes are skipped by content hash.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory.ingest.parsers import (
    JsonlReport,
    ParsedDoc,
    SkipFile,
    find_date,
    parse_datetime,
    read_text,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Connection

NOTE_SUFFIXES = (".md", ".markdown")
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_LINK = re.compile(r"(!?)\[\[([^\[\]|#^]*)(?:[#^][^\[\]|]*)?(?:\|([^\[\]]*))?\]\]")
_TAG = re.compile(r"(?<![\w/#&])#([A-Za-z_][\w/-]*|[0-9]+[A-Za-z_/-][\w/-]*)")
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def vault_root(path: Path) -> Path | None:
    """The vault a file belongs to (the nearest folder above it holding `.obsidian/`)."""
    for folder in Path(path).resolve().parents:
        if (folder / ".obsidian").is_dir():
            return folder
    return None


def detect(path: Path) -> Callable[[Path], list[ParsedDoc]] | None:
    if vault_root(path) is None:
        return None
    return parse_note if path.suffix.lower() in NOTE_SUFFIXES else skip_attachment


def skip_attachment(path: Path) -> list[ParsedDoc]:
    raise SkipFile(f"{path.name} is an attachment in an Obsidian vault, not a note.")


def split_front_matter(text: str) -> tuple[dict[str, Any], str, str]:
    """(properties, body, problem); a broken front matter is dropped with a reason, body kept."""
    m = _FRONT.match(text)
    if not m:
        return {}, text, ""
    body = text[m.end() :]
    import yaml

    try:
        data = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        return {}, body, f"front matter is not valid YAML{where}; properties skipped"
    if not isinstance(data, dict):
        return {}, body, "front matter is not a list of properties; skipped"
    return data, body, ""


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[,\s]+", value) if v]
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    return [str(value)]


def inline_tags(body: str) -> list[str]:
    text = _CODE.sub(" ", body)
    text = re.sub(r"^#{1,6}\s", "", text, flags=re.MULTILINE)  # headings are not tags
    return _TAG.findall(text)


def wikilinks(body: str) -> list[str]:
    """Link targets (note names) in order, without embeds of attachments."""
    out: list[str] = []
    for embed, target, _alias in _LINK.findall(_CODE.sub(" ", body)):
        target = target.strip()
        if not target or (embed and Path(target).suffix.lower() not in ("", *NOTE_SUFFIXES)):
            continue
        # [[Folder/Note]] names the note "Note"; notes are found by name, wherever they lie.
        name = target.rsplit("/", 1)[-1]
        name = Path(name).stem if Path(name).suffix.lower() in NOTE_SUFFIXES else name
        if name not in out:
            out.append(name)
    return out


def _when(props: dict[str, Any], body: str) -> datetime | None:
    for key in ("date", "created", "created_at", "day"):
        value = props.get(key)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        if isinstance(value, str):
            try:
                return parse_datetime(value)
            except ValueError:
                continue
    return find_date(body[:200])


def parse_note(path: Path) -> list[ParsedDoc]:
    out = JsonlReport()
    props, body, problem = split_front_matter(read_text(path))
    if problem:
        out.bad_lines.append((1, problem))
    body = body.strip()
    tags = list(
        dict.fromkeys(
            t.lstrip("#")
            for t in _as_list(props.get("tags") or props.get("tag")) + inline_tags(body)
        )
    )
    aliases = _as_list(props.get("aliases") or props.get("alias"))
    links = wikilinks(body)
    head = [path.stem + (f" (also: {', '.join(aliases)})" if aliases else "")]
    if tags:
        head.append("Tags: " + " ".join(f"#{t}" for t in tags))
    for key, value in props.items():
        if key in ("tags", "tag", "aliases", "alias", "cssclasses", "cssclass", "publish"):
            continue
        if isinstance(value, (str, int, float, date)) and str(value).strip():
            head.append(f"{key}: {value}")
    if links:
        head.append("Links: " + ", ".join(f"[[{name}]]" for name in links))
    if not body and not props:
        raise SkipFile(f"{path.name} is an empty note.")
    out.append(
        ParsedDoc(
            text="\n".join(head) + ("\n\n" + body if body else ""),
            kind="note",
            at=_when(props, body),
            title=path.stem,
        )
    )
    return out


def linked_notes(conn: Connection, memory_text: str, vault: Path) -> dict[str, list[str]]:
    """Note name -> ids of the memories imported from that note of `vault` (empty: not imported)."""
    from sqlalchemy import text as sql

    out: dict[str, list[str]] = {}
    root = str(Path(vault).resolve())
    for name in wikilinks(memory_text):
        rows = conn.execute(
            sql(
                "SELECT m.id, s.path FROM memories m JOIN sources s ON m.source_id = s.id "
                "WHERE s.path LIKE :p ESCAPE '\\'"
            ),
            {"p": root.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"},
        ).all()
        out[name] = [
            mid
            for mid, p in rows
            if Path(p).stem == name and Path(p).suffix.lower() in NOTE_SUFFIXES
        ]
    return out
