"""Memory commands: remember, import, search, forget, memories."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from app.commands._common import AppContext, memex_command
from app.errors import MemexError


def memory_errors(exc: Exception) -> MemexError:
    """Map memory-package errors to user errors (kind preserved)."""
    return MemexError(str(exc), kind=getattr(exc, "kind", "error"))


def _human_hits(payload: dict[str, Any]) -> str:
    if not payload["results"]:
        return "No memories match."
    lines = []
    for r in payload["results"]:
        when = (r.get("at") or r["created_at"])[:10]
        stale = "  (superseded)" if r.get("superseded_by") else ""
        text = " ".join(r["text"].split())
        lines.append(f"[{r['id']}] {when}  {text[:160]}{'…' if len(text) > 160 else ''}{stale}")
    return "\n".join(lines)


@memex_command(
    "remember",
    human=lambda p: f"Remembered [{p['id']}]" + ("" if p["created"] else " (already known)"),
)
@click.argument("text")
@click.option("--source", default=None, help="Where this came from (free text).")
@click.option("--at", "at_", default=None, help="When it happened (ISO 8601, e.g. 2024-05-01).")
@click.option(
    "--kind", type=click.Choice(["note", "fact", "chat"]), default="note", show_default=True
)
def remember(
    obj: AppContext, text: str, source: str | None, at_: str | None, kind: str
) -> dict[str, Any]:
    """Store one memory."""
    from memory import MemoryStoreError
    from memory.store import parse_at

    if not _utf8(text) or not _utf8(source):
        raise MemexError(
            "The text is not valid UTF-8 (it holds undecodable bytes); "
            "fix its encoding and try again.",
            kind="bad_input",
        )
    try:
        mem, created = obj.runtime.remember(text, source=source, at=parse_at(at_), kind=kind)
    except MemoryStoreError as exc:
        raise memory_errors(exc) from exc
    return {"id": mem.id, "created": created, "superseded_by": mem.superseded_by}


def _utf8(value: str | None) -> bool:
    try:
        (value or "").encode("utf-8")
    except UnicodeEncodeError:  # argv bytes that were not UTF-8 arrive as lone surrogates
        return False
    return True


def _bar(done: int, total: int, width: int = 24) -> str:
    """A terminal progress bar (the service relays it to the client's terminal as it goes)."""
    filled = width * min(done, total) // max(total, 1)
    return f"[{'#' * filled}{'.' * (width - filled)}] "


# Skips that mean "already done", not "nothing to do": an import of only these still succeeds.
_ALREADY_DONE = frozenset({"unchanged", "duplicate", "cancelled"})


def _human_import(p: dict[str, Any]) -> str:
    lines = (
        [p["error"]]
        if p.get("kind") == "nothing_imported"
        else [f"Imported {p['imported']} memories ({p['chunks']} chunks)."]
    )
    for s in p["skipped"]:
        lines.append(f"  skipped {s['path']}: {s['reason']}")
    for e in p["errors"]:
        lines.append(f"  error   {e['path']}: {e['reason']}")
    return "\n".join(lines)


@memex_command("import", human=_human_import)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--max-memories-per-file",
    "max_per_file",
    type=click.IntRange(min=1),
    default=None,
    help="Refuse a file that would become more memories than this (default: the "
    "import_max_memories_per_file setting, 5000).",
)
def import_(obj: AppContext, paths: tuple[Path, ...], max_per_file: int | None) -> dict[str, Any]:
    """Import files or folders (.txt .md .pdf .eml .jsonl, chat exports); unchanged files are
    skipped."""
    from app.service.jobs import report_progress
    from memory import MemoryStoreError

    def progress(p: Any) -> None:
        report_progress(p.done, p.total, p.path)  # the job journal: an interrupted import shows
        if not obj.json and p.total > 1:
            bar = _bar(p.done, p.total) if sys.stderr.isatty() else ""
            name = Path(p.path).name[:50]
            click.echo(f"\r  {bar}{p.done}/{p.total} {name:<50}", nl=False, err=True)

    try:
        report = obj.runtime.import_paths(
            list(paths), progress=progress, max_memories_per_file=max_per_file
        )
    except MemoryStoreError as exc:
        raise memory_errors(exc) from exc
    if (
        not obj.json
        and len(paths)
        and report.imported + len(report.skipped) + len(report.errors) > 1
    ):
        click.echo("", err=True)
    payload = report.to_json()
    if report.imported == 0 and not report.cancelled and report.errors:
        payload.update(error=report.errors[0]["reason"], kind="import_failed", _exit=1)
    elif (
        report.imported == 0
        and not report.cancelled
        and not any(s.get("kind") in _ALREADY_DONE for s in report.skipped)
    ):
        reason = report.skipped[0]["reason"] if report.skipped else "no files were found."
        payload.update(error=f"Nothing was imported: {reason}", kind="nothing_imported", _exit=1)
    return payload


@memex_command("search", human=_human_hits)
@click.argument("query")
@click.option(
    "--k", "k", type=click.IntRange(1, 1000), default=5, show_default=True, help="How many results."
)
def search(obj: AppContext, query: str, k: int) -> dict[str, Any]:
    """Search memories: keywords and meaning fused, newer facts above stale ones."""
    from memory import MemoryStoreError

    try:
        hits = obj.runtime.memory.search(query, k=k)
    except MemoryStoreError as exc:
        raise memory_errors(exc) from exc
    return {"results": [h.to_json() for h in hits]}


@memex_command(
    "forget",
    human=lambda p: f"Forgot {p['forgotten']} memor{'y' if p['forgotten'] == 1 else 'ies'}.",
)
@click.argument("ids", nargs=-1)
@click.option("--source", default=None, help="Forget everything imported from this source (path).")
def forget(obj: AppContext, ids: tuple[str, ...], source: str | None) -> dict[str, Any]:
    """Forget memories everywhere: SQLite, the keyword index, the vector store, future training
    data."""
    from memory import MemoryStoreError
    from memory.importer import source_key

    if bool(ids) == bool(source):
        raise MemexError(
            "Give memory ids or --source, not both and not neither.", kind="usage", exit_code=2
        )
    try:
        if source:
            path = Path(source).expanduser()
            key = source_key(path) if path.exists() else source
            n = obj.runtime.forget_source(key)
        else:
            n = obj.runtime.forget(list(ids))
    except MemoryStoreError as exc:
        raise memory_errors(exc) from exc
    return {"forgotten": n}


def _human_list(p: dict[str, Any]) -> str:
    if not p["memories"]:
        return 'No memories yet. Add one with `memex remember "..."` or `memex import FILE`.'
    return "\n".join(
        f"[{m['id']}] {(m['at'] or m['created_at'])[:10]} {m['kind']:<8} "
        f"{' '.join(m['text'].split())[:120]}" + ("  (superseded)" if m["superseded_by"] else "")
        for m in p["memories"]
    )


@memex_command("memories", human=_human_list)
@click.option("--limit", type=click.IntRange(1, 100000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@click.option("--kind", type=click.Choice(["note", "fact", "chat", "document"]), default=None)
def memories(obj: AppContext, limit: int, offset: int, kind: str | None) -> dict[str, Any]:
    """List stored memories, newest first."""
    mems = obj.runtime.memory.list(limit=limit, offset=offset, kind=kind)
    return {
        "total": obj.runtime.memory.count(),
        "memories": [
            {
                "id": m.id,
                "kind": m.kind,
                "text": m.text,
                "at": m.at.isoformat() if m.at else None,
                "created_at": m.created_at.isoformat(),
                "source": m.source,
                "superseded_by": m.superseded_by,
            }
            for m in mems
        ],
    }
