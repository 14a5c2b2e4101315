"""mbox mailboxes (RFC 4155): Thunderbird's folder files (`Inbox`, `Sent`, no suffix) and
Google Takeout's `*.mbox`.

Messages are separated by a "From " line at the start of the file or after a blank line;
mboxrd quoting (`>From ` inside a body) is undone. Each message becomes one memory (subject,
sender, recipients, plain-text body; HTML reduced to text). Takeout's `X-Gmail-Labels` are
kept as labels, and messages labelled Spam or Trash are left out. A message without headers
or that cannot be decoded is reported by its line in the file and skipped; the rest import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path

from memory.ingest.parsers import JsonlReport, ParsedDoc, SkipFile, _strip_html

# Mailboxes are routinely larger than single documents; messages are parsed one at a time.
MAX_MBOX_BYTES = 1 << 30
_QUOTED_FROM = re.compile(rb"^>(>*From )")
_SKIP_LABELS = {"spam", "trash"}


def detect(path: Path) -> Callable[[Path], list[ParsedDoc]] | None:
    if path.suffix.lower() == ".mbox":
        return parse_mbox
    if path.suffix:
        return None
    try:
        with path.open("rb") as fh:
            return parse_mbox if fh.read(5) == b"From " else None
    except OSError:
        return None


def split_messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number of the "From " separator, raw message without it)."""
    start_line, prev_blank = 0, True
    current: list[bytes] = []
    for n, line in enumerate(data.splitlines(keepends=True), start=1):
        if line.startswith(b"From ") and prev_blank:
            if start_line:
                yield start_line, b"".join(current)
            start_line, current = n, []
        elif start_line:
            current.append(_QUOTED_FROM.sub(rb"\1", line))
        prev_blank = not line.strip()
    if start_line:
        yield start_line, b"".join(current)


def _body(msg: object) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
    if part is None:
        return ""
    try:
        body = part.get_content()
    except (LookupError, UnicodeDecodeError, AssertionError):
        payload = part.get_payload(decode=True)
        body = (
            payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload or "")
        )
    if part.get_content_type() == "text/html":
        body = _strip_html(body)
    return str(body).strip()


def parse_message(raw: bytes) -> ParsedDoc | None:
    """One message as a document; None when labelled spam/trash; ValueError when malformed."""
    import email
    from email import policy
    from email.utils import parsedate_to_datetime

    msg = email.message_from_bytes(raw, policy=policy.default)
    if msg.defects and not msg.keys():
        raise ValueError(f"is not a mail message ({msg.defects[0].__class__.__name__})")
    if not (msg.get("From") or msg.get("Subject") or msg.get("Date")):
        raise ValueError("has no From, Subject or Date header")
    labels = [lab.strip() for lab in str(msg.get("X-Gmail-Labels") or "").split(",") if lab.strip()]
    if any(lab.lower() in _SKIP_LABELS for lab in labels):
        return None
    at = None
    if msg.get("Date"):
        try:
            at = parsedate_to_datetime(str(msg["Date"]))
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
        except (TypeError, ValueError, IndexError):
            at = None
    try:
        body = _body(msg)
    except Exception as exc:  # damaged MIME structure: the email package raises many types
        raise ValueError(f"has a damaged body ({exc.__class__.__name__})") from exc
    head = [f"{h}: {msg[h]}" for h in ("Subject", "From", "To", "Cc") if msg.get(h)]
    if labels:
        head.append("Labels: " + ", ".join(labels))
    text = ("\n".join(head) + "\n\n" + body).strip()
    return ParsedDoc(text=text, kind="document", at=at, title=str(msg.get("Subject") or ""))


def parse_mbox(path: Path) -> list[ParsedDoc]:
    data = path.read_bytes()
    if not data.strip():
        raise SkipFile(f"{path.name} is an empty mailbox.")
    out = JsonlReport()
    for n, (line, raw) in enumerate(split_messages(data), start=1):
        try:
            doc = parse_message(raw)
        except ValueError as exc:
            out.bad_lines.append((line, f"message {n} {exc}; skipped"))
            continue
        if doc is not None:
            out.append(doc)
    if not out and not out.bad_lines:
        raise SkipFile(f"{path.name} holds no messages.")
    return out


parse_mbox.max_bytes = MAX_MBOX_BYTES  # type: ignore[attr-defined]
