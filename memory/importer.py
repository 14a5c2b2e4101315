"""The import pipeline: files -> parsed docs -> chunks -> embeddings -> one transaction per batch.

Each batch of files is written in a single SQLite transaction (sources + memories + chunks +
pending vector ops), so a crash or kill -9 never leaves a half-imported file. Unchanged files
(same path, same content hash) are skipped; a changed file replaces its old memories.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from memory import records
from memory.db import to_iso, utcnow
from memory.ingest import ParseError, SkipFile, chunk_text, parse_file
from memory.ingest.parsers import ParsedDoc
from memory.timeline import detect_topic
from memory.turns import context_text
from memory.types import ImportProgress, ImportReport

if TYPE_CHECKING:
    from memory.store import MemoryStore

BATCH_CHUNKS = 256
# A file that would become more memories than this is refused with a report (the CLI's
# --max-memories-per-file raises it): about a minute of embedding on two cores.
MAX_MEMORIES_PER_FILE = 5000


@dataclass
class _FileWork:
    path: Path
    file_hash: str
    mems: list[records.NewMemory]
    kept: set[str] = field(default_factory=set)  # hashes of parts already stored from this file


def expand(paths: Sequence[Path], report: ImportReport) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if not p.exists():
            report.errors.append({"path": str(p), "reason": f"{p} does not exist."})
        elif p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and not _hidden(f, p))
            if not found:
                report.skipped.append(
                    {
                        "path": source_key(p),
                        "kind": "nothing_to_import",
                        "reason": f"{p.name or p} holds no files to import.",
                    }
                )
            files.extend(found)
        else:
            files.append(p)
    return files


def _hidden(f: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in f.relative_to(root).parts)


def printable(text_: str) -> str:
    """`text_` with the undecodable bytes of a file name written as \\xNN: SQLite, JSON and the
    terminal all need valid UTF-8, and the user needs to see which file it was."""
    try:
        text_.encode("utf-8")
        return text_
    except UnicodeEncodeError:
        pass
    try:
        return text_.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text_.encode("utf-8", "backslashreplace").decode("utf-8")


def source_key(path: Path) -> str:
    """How a file is named in `sources` (and by `memex forget --source`)."""
    return printable(str(Path(path).expanduser().resolve()))


class _NotRegular(OSError):
    pass


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    # O_NONBLOCK: opening a named pipe must not wait for a writer; it is refused just below
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _NotRegular(
                f"{path.name} is not a regular file (a pipe, socket or device); "
                "memex imports only files."
            )
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_import(
    store: MemoryStore,
    paths: Sequence[Path],
    progress: Callable[[ImportProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    max_memories_per_file: int | None = None,
) -> ImportReport:
    report = ImportReport()
    files = expand(paths, report)
    pending: list[_FileWork] = []
    seen_hashes: set[str] = set()
    limit = max_memories_per_file or MAX_MEMORIES_PER_FILE

    for done, work in enumerate(_parse_all(store, files, report, seen_hashes, limit), start=1):
        if progress:
            progress(
                ImportProgress(
                    done=done, total=len(files), path=printable(str(work.path)) if work else ""
                )
            )
        if work is not None:
            pending.append(work)
            if sum(len(m.chunks) for w in pending for m in w.mems) >= BATCH_CHUNKS:
                _write_batch(store, pending, report)
                pending = []
        if cancel and cancel():
            report.cancelled = True
            break
    if pending and not report.cancelled:
        _write_batch(store, pending, report)
    elif pending:
        # Cancelled: files already parsed but not written are reported as skipped, not half-stored.
        for w in pending:
            report.skipped.append(
                {"path": source_key(w.path), "reason": "import cancelled", "kind": "cancelled"}
            )
    for entry in (*report.skipped, *report.errors):  # names and reasons quote file names
        entry.update({k: printable(v) for k, v in entry.items()})
    return report


def _parse_all(
    store: MemoryStore, files: list[Path], report: ImportReport, seen_hashes: set[str], limit: int
) -> Iterator[_FileWork | None]:
    for path in files:
        yield _parse_one(store, path, report, seen_hashes, limit)


def _parse_one(
    store: MemoryStore,
    path: Path,
    report: ImportReport,
    seen_hashes: set[str],
    limit: int = MAX_MEMORIES_PER_FILE,
) -> _FileWork | None:
    key = source_key(path)
    try:
        fhash = _file_hash(path)
    except _NotRegular as exc:
        report.errors.append({"path": key, "reason": str(exc), "kind": "not_a_file"})
        return None
    except OSError as exc:
        report.errors.append(
            {"path": key, "reason": f"{path.name} could not be read ({exc.strerror})."}
        )
        return None
    with store.read() as conn:
        old = conn.execute(
            text("SELECT content_hash FROM sources WHERE path=:p"), {"p": key}
        ).scalar()
    if old == fhash:
        report.skipped.append(
            {"path": key, "reason": "unchanged since the last import", "kind": "unchanged"}
        )
        return None
    try:
        docs = parse_file(path, store.max_file_bytes)
    except SkipFile as exc:
        report.skipped.append({"path": key, "reason": str(exc), "kind": "nothing_to_import"})
        return None
    except ParseError as exc:
        report.errors.append({"path": key, "reason": str(exc)})
        return None
    if len(docs) > limit:
        # Refused before any embedding starts: 100k headings would be an hour of work nobody asked
        # for.
        report.errors.append(
            {
                "path": key,
                "kind": "too_many_memories",
                "reason": (
                    f"{path.name} would become {len(docs):,} memories, over the limit of "
                    f"{limit:,} per file; import it with --max-memories-per-file {len(docs)} "
                    "to allow it."
                ),
            }
        )
        return None
    for line_no, reason in getattr(docs, "bad_lines", ()):
        report.errors.append({"path": f"{key}:{line_no}", "reason": f"line {line_no}: {reason}"})
    now = utcnow()
    mems = []
    last_turn: dict[str, ParsedDoc] = {}  # session -> its previous turn (context for embedding)
    for d in docs:
        h = records.turn_hash(d.text, d.speaker, d.session, d.at)
        prev = last_turn.get(d.session or "") if d.session else None
        if d.session:
            last_turn[d.session] = d
        if h in seen_hashes:
            continue
        seen_hashes.add(h)
        mems.append(
            records.NewMemory(
                id=records.new_id(),
                kind=d.kind,
                text=d.text,
                hash=h,
                at=d.at,
                created_at=now,
                source=d.source or key,
                source_id=None,
                topic=detect_topic(d.text),
                chunks=chunk_text(d.text, store.chunk_chars),
                speaker=d.speaker,
                session=d.session,
                context=context_text(
                    d.text,
                    speaker=d.speaker,
                    session=d.session,
                    at=d.at,
                    previous=prev.text if prev else None,
                    previous_speaker=prev.speaker if prev else None,
                ),
            )
        )
    return _FileWork(path=path, file_hash=fhash, mems=mems)


def _write_batch(store: MemoryStore, batch: list[_FileWork], report: ImportReport) -> None:
    # Drop duplicates of stored or forgotten content before paying for embeddings.
    all_hashes = [m.hash for w in batch for m in w.mems]
    with store.read() as conn:
        dupes = records.existing_hashes(conn, all_hashes)
        dead = records.tombstoned(conn, all_hashes)
    for w in batch:
        before = len(w.mems)
        # What the file still holds: on a re-import its unchanged parts are "duplicates" of
        # themselves and must be kept, not deleted with the file's old version below.
        still = {m.hash for m in w.mems if m.hash in dupes}
        w.mems = [m for m in w.mems if m.hash not in dead and m.hash not in dupes]
        w.kept = still
        if before and not w.mems:
            report.skipped.append(
                {
                    "path": source_key(w.path),
                    "kind": "duplicate",
                    "reason": "already in memory (duplicate or forgotten content)",
                }
            )
    store.embed_new([m for w in batch for m in w.mems])
    with store.write() as conn:
        topics: set[str] = set()
        for w in batch:
            key = source_key(w.path)
            old_id = conn.execute(text("SELECT id FROM sources WHERE path=:p"), {"p": key}).scalar()
            if old_id is not None:
                old_ids = [
                    r[0]
                    for r in conn.execute(
                        text("SELECT id, content_hash FROM memories WHERE source_id=:s"),
                        {"s": old_id},
                    )
                    if r[1] not in w.kept
                ]
                records.delete_memories(conn, old_ids, tombstone=False)
                conn.execute(
                    text("UPDATE sources SET content_hash=:h, imported_at=:t WHERE id=:i"),
                    {"h": w.file_hash, "t": to_iso(utcnow()), "i": old_id},
                )
                source_id = old_id
            else:
                source_id = conn.execute(
                    text("""INSERT INTO sources(path, content_hash, type, imported_at)
                            VALUES (:p, :h, :ty, :t) RETURNING id"""),
                    {
                        "p": key,
                        "h": w.file_hash,
                        "ty": printable(w.path.suffix.lower().lstrip(".")) or "file",
                        "t": to_iso(utcnow()),
                    },
                ).scalar_one()
            for m in w.mems:
                m.source_id = source_id
            report.chunks += records.insert_memories(conn, w.mems)
            report.imported += len(w.mems)
            report.memory_ids.extend(m.id for m in w.mems)
            topics |= records.topics_of(w.mems)
        for topic in topics:
            records.recompute_topic(conn, topic)
        records.log_event(
            conn, "import", files=len(batch), memories=sum(len(w.mems) for w in batch)
        )
    store.flush_vectors([m for w in batch for m in w.mems])
