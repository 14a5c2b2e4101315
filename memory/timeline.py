"""Time awareness: which life "slot" a memory updates (home, employer, manager, phone, ...).

A memory that states the writer's current home, job, manager, phone, partner, pet, diet, ...
gets a topic. Among the memories of one topic the newest (by event time) is current and every
older one is marked superseded by it: kept, searchable, but ranked below what replaced it.

The vocabulary is data (memory/slots.json): per slot, the statements that set it in several
languages and the questions that ask for its current value. Phrasings that announce a change
("my new X is", "I switched to", "no longer", "instead") open slots the file does not list;
their topic is "open_<word>".
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

SLOTS_FILE = Path(__file__).with_name("slots.json")
HEAD_CHARS = 600


@lru_cache(maxsize=1)
def _vocab() -> dict:
    return json.loads(SLOTS_FILE.read_text(encoding="utf-8"))


def _compile_sets() -> dict[str, list[re.Pattern[str]]]:
    return {
        slot: [re.compile(p, re.IGNORECASE) for ps in spec["set"].values() for p in ps]
        for slot, spec in _vocab()["slots"].items()
    }


# slot -> patterns of statements that set it (all languages). Order: the first match is primary.
TOPIC_PATTERNS: dict[str, list[str]] = {
    slot: [p for ps in spec["set"].values() for p in ps] for slot, spec in _vocab()["slots"].items()
}
_COMPILED = _compile_sets()
_OPEN = [re.compile(p, re.IGNORECASE) for ps in _vocab()["open"].values() for p in ps]
# Questions that ask for the current value of a slot.
QUERY_TOPICS: dict[str, re.Pattern[str]] = {
    slot: re.compile("|".join(spec["ask"]), re.IGNORECASE)
    for slot, spec in _vocab()["slots"].items()
}
# Asked in this order: "what is my job title" names a title before it names work.
_ASK_ORDER = (
    "phone",
    "email",
    "residence",
    "job_title",
    "employer",
    "manager",
    "partner",
    "pet",
    "instrument",
    "diet",
)
_PAST = re.compile(_vocab()["past"], re.IGNORECASE)
_YEAR = re.compile(r"\b((?:19|20)\d\d)\b")
_SLOT_WORD = re.compile(r"[^\w]+")
# Open-slot words too vague to name a slot ("my new one is", "I now think").
_VAGUE = frozenset(
    "one thing way time day think feel know guess believe see am is are have had do can "
    "want need hope love like really also just still even".split()
)


def _open_slots(head: str) -> list[str]:
    out = []
    for p in _OPEN:
        for m in p.finditer(head):
            word = _SLOT_WORD.sub("_", m.group("slot").lower()).strip("_")
            if word and word not in _VAGUE and len(word) >= 3:
                out.append(f"open_{word}")
    return list(dict.fromkeys(out))


def detect_topics(text: str) -> list[str]:
    """The life slots a first-person memory sets, primary (first matched) first."""
    head = text[:HEAD_CHARS]
    named = [
        topic for topic, patterns in _COMPILED.items() if any(p.search(head) for p in patterns)
    ]
    return named or _open_slots(head)


def detect_topic(text: str) -> str | None:
    """Space-separated topics as stored in the `topic` column (primary first), or None."""
    topics = detect_topics(text)
    return " ".join(topics) if topics else None


def query_topic(query: str) -> str | None:
    for topic in _ASK_ORDER:
        pattern = QUERY_TOPICS.get(topic)
        if pattern is not None and pattern.search(query):
            return topic
    for topic, pattern in QUERY_TOPICS.items():
        if topic not in _ASK_ORDER and pattern.search(query):
            return topic
    return None


def asks_about_past(query: str) -> bool:
    return bool(_PAST.search(query))


def query_year(query: str) -> int | None:
    m = _YEAR.search(query)
    return int(m.group(1)) if m else None
