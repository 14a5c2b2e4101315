"""WhatsApp chat exports (.txt): one chat turn per message, a session per chat and day.

Android: "12/31/23, 9:41 PM - Name: text" (or "31/12/2023, 21:41 - Name: text");
iOS:     "[31.12.23, 21:41:05] Name: text" (or "[12/31/23, 9:41:05 PM] Name: text").
Lines without a timestamp continue the previous message. System lines ("Messages and calls are
end-to-end encrypted", "X added Y") have no "Name: " and are skipped. The day/month order is
decided per file: a first field over 12 means day first, a second field over 12 month first;
otherwise dotted dates are day first and slashed ones month first (the US export).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_STAMP = (
    r"(?P<a>\d{1,2})[./-](?P<b>\d{1,2})[./-](?P<y>\d{2,4}),?\s+"
    r"(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?(?:\s*(?P<ap>[AaPp]\.?\s?[Mm]\.?))?"
)
_ANDROID = re.compile(rf"^\u200e?{_STAMP}\s+[-\u2013]\s+(?P<rest>.*)$")
_IOS = re.compile(rf"^\u200e?\[{_STAMP}\]\s+(?P<rest>.*)$")
_SPEAKER = re.compile(r"^(?P<name>[^:\n]{1,60}?):\s(?P<text>.*)$", re.DOTALL)
_MEDIA = re.compile(
    r"^\u200e?<(?:Media omitted|Medien ausgeschlossen|attached: [^>]*)>$|^\u200e?\w+ omitted$", re.I
)


@dataclass(frozen=True)
class Message:
    at: datetime
    speaker: str
    text: str


def _match(line: str) -> re.Match[str] | None:
    return _IOS.match(line) or _ANDROID.match(line)


def looks_like_whatsapp(text: str) -> bool:
    """At least two of the first ten non-empty lines are WhatsApp message lines."""
    lines = [line for line in text.splitlines() if line.strip()][:10]
    return sum(1 for line in lines if _match(line.strip())) >= min(2, len(lines))


def _day_first(matches: list[re.Match[str]]) -> bool:
    if any(int(m.group("a")) > 12 for m in matches):
        return True
    if any(int(m.group("b")) > 12 for m in matches):
        return False
    return any("." in m.group(0)[:12] for m in matches)


def _when(m: re.Match[str], day_first: bool) -> datetime | None:
    a, b, y = int(m.group("a")), int(m.group("b")), int(m.group("y"))
    day, month = (a, b) if day_first else (b, a)
    year = y + 2000 if y < 100 else y
    hour, minute, sec = int(m.group("h")), int(m.group("mi")), int(m.group("s") or 0)
    ap = (m.group("ap") or "").lower().replace(".", "").replace(" ", "")
    if ap == "pm" and hour < 12:
        hour += 12
    elif ap == "am" and hour == 12:
        hour = 0
    try:
        return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)
    except ValueError:
        return None


def parse_messages(text: str) -> list[Message]:
    lines = text.splitlines()
    stamped = [(i, m) for i, line in enumerate(lines) if (m := _match(line.strip()))]
    day_first = _day_first([m for _, m in stamped])
    starts = {i: m for i, m in stamped}
    out: list[Message] = []
    current: tuple[datetime, str, list[str]] | None = None  # at, speaker, lines
    for i, line in enumerate(lines):
        m = starts.get(i)
        if m is None:
            if current is not None and line.strip():
                current[2].append(line.rstrip())
            continue
        if current is not None:
            out.append(Message(current[0], current[1], "\n".join(current[2]).strip()))
            current = None
        at = _when(m, day_first)
        who = _SPEAKER.match(m.group("rest"))
        if at is None or who is None:
            continue  # a system line, or a date that does not exist
        current = (at, who.group("name").strip().lstrip("\u200e~ "), [who.group("text")])
    if current is not None:
        out.append(Message(current[0], current[1], "\n".join(current[2]).strip()))
    return [msg for msg in out if msg.text and not _MEDIA.match(msg.text)]


def chat_name(path: Path) -> str:
    stem = path.stem
    for prefix in (
        "WhatsApp Chat with ",
        "WhatsApp Chat mit ",
        "WhatsApp Chat - ",
        "Conversa do WhatsApp com ",
    ):
        if stem.startswith(prefix):
            return stem[len(prefix) :].strip() or stem
    return stem.lstrip("_") or "WhatsApp chat"
