"""File parsers, chosen by extension from a registry. Each returns a list of ParsedDoc.

Problems are raised as SkipFile (nothing wrong, nothing to import: empty, unknown type) or
ParseError (the file is damaged or unreadable); both carry one sentence for the user.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ParsedDoc:
    text: str
    kind: str = "document"
    at: datetime | None = None
    source: str | None = None  # overrides the file path as the memory's source (jsonl)
    title: str | None = None
    speaker: str | None = None  # chat turns: who said it
    session: str | None = None  # chat turns: the conversation or session it belongs to


class SkipFile(Exception):
    """Nothing to import from this file (empty, unknown type, unchanged)."""


class ParseError(Exception):
    """The file could not be read (corrupt, encrypted, not text)."""


_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?")


def parse_datetime(value: str) -> datetime:
    """ISO 8601 (date or date-time; 'Z' allowed); naive values are taken as UTC."""
    v = value.strip()
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    dt = datetime.fromisoformat(v)
    dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    if not MIN_YEAR <= dt.year <= MAX_YEAR:
        raise DateOutOfRange(
            f"{value!r} is outside the years {MIN_YEAR}-{MAX_YEAR} memex keeps dates in."
        )
    return dt


# Far from datetime's limits (years 1 and 9999), so converting a time zone or adding a year
# to a stored date can never overflow.
MIN_YEAR, MAX_YEAR = 1000, 9000


class DateOutOfRange(ValueError):
    """A well-formed date too far in the past or future to store."""


def find_date(text: str) -> datetime | None:
    m = _DATE.search(text)
    if not m:
        return None
    try:
        return parse_datetime(m.group(0).replace(" ", "T"))
    except ValueError:
        return None


def read_text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise SkipFile(f"{path.name} is empty.")
    sample = data[:8192]
    if b"\x00" in sample or _binary_ratio(sample) > 0.3:
        raise ParseError(f"{path.name} looks like a binary file, not text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"{path.name} is not valid UTF-8 text (bad byte at offset {exc.start})."
        ) from exc


def _binary_ratio(sample: bytes) -> float:
    if not sample:
        return 0.0
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls / len(sample)


def parse_txt(path: Path) -> list[ParsedDoc]:
    text = read_text(path).strip()
    if not text:
        raise SkipFile(f"{path.name} is empty.")
    from memory.ingest import whatsapp

    if whatsapp.looks_like_whatsapp(text):
        chat = whatsapp.chat_name(path)
        return [
            ParsedDoc(
                text=m.text,
                kind="chat",
                at=m.at,
                speaker=m.speaker,
                session=f"{chat} {m.at.date().isoformat()}",
            )
            for m in whatsapp.parse_messages(text)
        ]
    return [ParsedDoc(text=text, kind="document", at=find_date(text[:200]), title=path.stem)]


_HEADING = re.compile(r"^(#{1,6})\s+(.*)$", re.MULTILINE)


def parse_md(path: Path) -> list[ParsedDoc]:
    """One document per heading section; a date in a heading becomes the section's time."""
    text = read_text(path)
    matches = list(_HEADING.finditer(text))
    if not matches:
        return parse_txt(path)
    docs: list[ParsedDoc] = []
    preamble = text[: matches[0].start()].strip()
    if preamble:
        docs.append(ParsedDoc(text=preamble, at=find_date(preamble[:200]), title=path.stem))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[m.end() : end].strip()
        heading = m.group(2).strip()
        if not body:
            continue
        docs.append(ParsedDoc(text=f"{heading}\n\n{body}", at=find_date(heading), title=heading))
    if not docs:
        raise SkipFile(f"{path.name} has headings but no text.")
    return docs


def parse_pdf(path: Path) -> list[ParsedDoc]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            raise ParseError(f"{path.name} is an encrypted PDF; decrypt it first.")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except ParseError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AssertionError) as exc:
        raise ParseError(f"{path.name} is not a readable PDF ({exc.__class__.__name__}).") from exc
    except Exception as exc:  # pypdf raises many internal types on damaged files
        raise ParseError(f"{path.name} is a damaged PDF ({exc.__class__.__name__}).") from exc
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise SkipFile(f"{path.name} has no extractable text (scanned images?).")
    return [ParsedDoc(text=text, kind="document", title=path.stem)]


def parse_eml(path: Path) -> list[ParsedDoc]:
    import email
    from email import policy
    from email.utils import parsedate_to_datetime

    raw = path.read_bytes()
    if not raw.strip():
        raise SkipFile(f"{path.name} is empty.")
    msg = email.message_from_bytes(raw, policy=policy.default)
    if not (msg.get("From") or msg.get("Subject") or msg.get("Date")):
        raise ParseError(f"{path.name} is not an email message (no From/Subject/Date headers).")
    body_part = msg.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
    body = ""
    if body_part is not None:
        try:
            body = body_part.get_content()
        except (LookupError, UnicodeDecodeError):
            payload = body_part.get_payload(decode=True)
            body = (
                payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
            )
        if body_part.get_content_type() == "text/html":
            body = _strip_html(body)
    at = None
    if msg.get("Date"):
        try:
            at = parsedate_to_datetime(str(msg["Date"]))
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
        except (TypeError, ValueError):
            at = None
    head = "\n".join(f"{h}: {msg[h]}" for h in ("Subject", "From", "To") if msg.get(h))
    text = f"{head}\n\n{body.strip()}".strip()
    return [
        ParsedDoc(text=text, kind="document", at=at, title=str(msg.get("Subject") or path.stem))
    ]


def _strip_html(html: str) -> str:
    from html.parser import HTMLParser

    class _Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []

        def handle_data(self, data: str) -> None:
            self.parts.append(data)

    p = _Text()
    p.feed(html)
    return re.sub(r"\n\s*\n+", "\n\n", "".join(p.parts)).strip()


class JsonlReport(list):  # type: ignore[type-arg]
    """ParsedDocs plus the bad lines found while reading (line number, reason)."""

    def __init__(self) -> None:
        super().__init__()
        self.bad_lines: list[tuple[int, str]] = []


def parse_jsonl(path: Path) -> list[ParsedDoc]:
    from memory.types import MEMORY_KINDS

    text = read_text(path)
    out = JsonlReport()
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            out.bad_lines.append((n, f"not valid JSON ({exc.msg})"))
            continue
        except RecursionError:
            out.bad_lines.append((n, "nested too deeply to be a memory"))
            continue
        if (
            not isinstance(obj, dict)
            or not isinstance(obj.get("text"), str)
            or not obj["text"].strip()
        ):
            out.bad_lines.append((n, 'needs an object with a non-empty "text" string'))
            continue
        kind = obj.get("kind") or "note"
        if kind not in MEMORY_KINDS:
            out.bad_lines.append((n, f"unknown kind {kind!r}"))
            continue
        at = None
        if obj.get("at"):
            try:
                at = parse_datetime(str(obj["at"]))
            except ValueError:
                out.bad_lines.append((n, f"bad date {obj['at']!r}"))
                continue
        source = obj.get("source")
        speaker, session = obj.get("speaker"), obj.get("session")
        out.append(
            ParsedDoc(
                text=obj["text"].strip(),
                kind=kind,
                at=at,
                source=str(source) if source else None,
                speaker=str(speaker).strip() or None if speaker else None,
                session=str(session).strip() or None if session else None,
            )
        )
    if not out and not out.bad_lines:
        raise SkipFile(f"{path.name} is empty.")
    return out


def parse_chat_json(path: Path) -> list[ParsedDoc]:
    """Chat exports: Telegram-style {"messages":[{date, from, text}]} or ChatGPT
    conversations.json."""
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"{path.name} is not valid JSON ({exc.msg} at line {exc.lineno})."
        ) from exc
    except RecursionError as exc:
        raise ParseError(f"{path.name} is nested too deeply to be a chat export.") from exc
    docs: list[ParsedDoc] = []
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        # One memory per message (a chat turn: speaker, session = the chat and day).
        chat = str(data.get("name") or path.stem)
        for m in data["messages"]:
            if not isinstance(m, dict):
                continue
            body = m.get("text")
            if isinstance(body, list):  # Telegram rich text
                body = "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in body)
            if not isinstance(body, str) or not body.strip():
                continue
            stamp = str(m.get("date", ""))
            at = None
            try:
                at = parse_datetime(stamp) if stamp else None
            except ValueError:
                pass
            speaker = str(m.get("from") or m.get("author") or "").strip() or None
            docs.append(
                ParsedDoc(
                    text=body.strip(),
                    kind="chat",
                    at=at,
                    speaker=speaker,
                    session=f"{chat} {stamp[:10]}".strip(),
                )
            )
        docs.sort(key=lambda d: d.at or datetime.min.replace(tzinfo=UTC))
    elif isinstance(data, list) and data and isinstance(data[0], dict) and "mapping" in data[0]:
        for conv in data:
            msgs = []
            for node in (conv.get("mapping") or {}).values():
                msg = (node or {}).get("message") or {}
                parts = ((msg.get("content") or {}).get("parts")) or []
                role = ((msg.get("author") or {}).get("role")) or "?"
                txt = " ".join(p for p in parts if isinstance(p, str)).strip()
                if txt and role in ("user", "assistant"):
                    msgs.append((msg.get("create_time") or 0, role, txt))
            if msgs:
                msgs.sort(key=lambda m: m[0])
                ts = conv.get("create_time")
                start = datetime.fromtimestamp(ts, tz=UTC) if isinstance(ts, (int, float)) else None
                title = str(conv.get("title") or "conversation")
                for when, role, txt in msgs:
                    at = datetime.fromtimestamp(when, tz=UTC) if when else start
                    docs.append(
                        ParsedDoc(text=txt, kind="chat", at=at, speaker=role, session=title)
                    )
    else:
        raise SkipFile(f"{path.name} is JSON but not a known chat export.")
    if not docs:
        raise SkipFile(f"{path.name} holds no messages.")
    return docs


PARSERS: dict[str, Callable[[Path], list[ParsedDoc]]] = {
    ".txt": parse_txt,
    ".text": parse_txt,
    ".md": parse_md,
    ".markdown": parse_md,
    ".pdf": parse_pdf,
    ".eml": parse_eml,
    ".jsonl": parse_jsonl,
    ".json": parse_chat_json,
}


# Formats known by where a file lies or what it holds, tried before the extension:
# "module:detect", detect(path) -> a parser or None; imported only when an import runs.
FORMAT_DETECTORS: tuple[str, ...] = (
    "memory.ingest.obsidian:detect",
    "memory.ingest.keep:detect",
    "memory.ingest.mbox:detect",
)


def detect_format(path: Path) -> Callable[[Path], list[ParsedDoc]] | None:
    import importlib

    for target in FORMAT_DETECTORS:
        module_name, attr = target.split(":")
        parser = getattr(importlib.import_module(module_name), attr)(path)
        if parser is not None:
            return parser  # type: ignore[no-any-return]
    return None


def parse_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> list[ParsedDoc]:
    parser = detect_format(path) or PARSERS.get(path.suffix.lower())
    if parser is None:
        raise SkipFile(f"{path.name}: unsupported file type {path.suffix or '(none)'}.")
    max_bytes = max(max_bytes, getattr(parser, "max_bytes", 0))  # mailboxes may be larger
    size = path.stat().st_size
    if size == 0:
        raise SkipFile(f"{path.name} is empty.")
    if size > max_bytes:
        raise ParseError(
            f"{path.name} is {size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB import limit; "
            "split it first."
        )
    try:
        return parser(path)
    except (SkipFile, ParseError):
        raise
    except OSError as exc:
        raise ParseError(f"{path.name} could not be read ({exc.strerror or exc}).") from exc
    except RecursionError as exc:
        raise ParseError(f"{path.name} is nested too deeply to import.") from exc
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError) as exc:
        # odd shapes in a file (a list where a chat export has an object) must not end a folder
        # import
        raise ParseError(
            f"{path.name} could not be parsed ({exc.__class__.__name__}); "
            "is it the file type its name says?"
        ) from exc
