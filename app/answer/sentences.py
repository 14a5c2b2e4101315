"""Evidence sentences: a memory cut into sentences, and how much of a question each holds.

Every answer strategy ranks these; the spans an answer rests on are offsets into them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from app.answer.question import Question, content_words, same_person
from memory import dates as dates_
from memory.relevance import stem

_END = re.compile(r"[.!?]+(?=\s|$)|\n+")
_ABBREVIATIONS = frozenset("dr mr ms mrs st prof jr sr vs etc e.g i.e no approx".split())


@dataclass(frozen=True)
class Sentence:
    memory_id: str
    start: int  # character offsets in the memory's full text
    end: int
    text: str
    when: datetime
    speaker: str | None
    rank: int  # retrieval rank of its memory (0 = best)
    superseded: bool
    slot: bool = False  # its memory holds the asked-about life slot
    recency: float = 0.0  # 1.0 for the newest relevant memory, 0.0 for the oldest
    memory_text: str = ""  # the whole memory: a sentence's context ("... My manager is X.")
    similarity: float = 0.0  # its memory's similarity to the question
    context: str = ""  # a chat turn: the other speaker's turn it replies to


def sentences(
    memory_id: str,
    text: str,
    when: datetime,
    speaker: str | None,
    rank: int,
    superseded: bool,
    *,
    slot: bool = False,
    recency: float = 0.0,
    similarity: float = 0.0,
    context: str = "",
) -> list[Sentence]:
    return [
        Sentence(
            memory_id,
            s,
            e,
            text[s:e],
            when,
            speaker,
            rank,
            superseded,
            slot,
            recency,
            text,
            similarity,
            context,
        )
        for s, e in split_sentences(text)
    ]


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence; "Dr. Costa" and "J. Smith" do not end one."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _END.finditer(text):
        before = text[start : m.start()].split()
        last = before[-1].lower().rstrip(".") if before else ""
        if m.group(0).startswith(".") and (
            last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())
        ):
            continue
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        chunk = text[a:b]
        if chunk.strip():
            lead = len(chunk) - len(chunk.lstrip())
            out.append((a + lead, a + len(chunk.rstrip())))
    return out


# Words a question uses for what a memory says another way ("where do I live" / "moved to").
SYNONYMS: dict[str, frozenset[str]] = {
    stem(k): frozenset(stem(w) for w in v.split())
    for k, v in {
        "live": "move relocate home address flat house apartment reside stay",
        "work": "job employ join hire company employer office",
        "job": "work employ join hire position role title career",
        "title": "role position job promote",
        "marry": "wedding husband wife engage",
        "partner": "husband wife boyfriend girlfriend together",
        "phone": "number mobile cell",
        "number": "phone mobile",
        "email": "mail address",
        "diet": "vegan vegetarian eat food",
        "pet": "dog cat puppy kitten",
        "dog": "puppy",
        "cat": "kitten",
        "child": "son daughter baby kid",
        "kid": "son daughter baby child",
        "born": "birth birthday baby",
        "trip": "travel visit holiday vacation",
        "visit": "trip travel went go",
        "city": "town",
        "instrument": "violin cello piano guitar drum flute",
        "play": "playing lesson",
        "study": "phd degree university college school major graduate student course masters",
        "address": "live move street road lane flat house home apartment",
        "manager": "boss supervisor lead",
        # Everyday paraphrases a conversation uses for what a question asks.
        "symbolize": "stand represent mean symbol remind",
        "symbolise": "stand represent mean symbol remind",
        "represent": "stand symbolize symbolise mean symbol",
        "mean": "stand represent symbolize symbolise",
        "realize": "realise learn understand",
        "realise": "realize learn understand",
        "motivate": "inspire drive push",
        "inspire": "motivate",
        "recommend": "suggest",
        "feel": "felt",
        "destress": "de-stress relax unwind stress",
        "relax": "destress de-stress unwind chill",
        "favorite": "favourite fav fave love",
        "favourite": "favorite fav fave love",
    }.items()
}


def same_word(a: str, b: str) -> bool:
    """Whether two stemmed words say the same: equal, one a long prefix of the other, or a
    synonym the question's word allows."""
    if a == b or (len(a) >= 5 and len(b) >= 5 and (a.startswith(b) or b.startswith(a))):
        return True
    return b in SYNONYMS.get(a, frozenset())


def focus_stems(q: Question) -> list[str]:
    return [stem(w) for w in q.focus]


SUBJECT_WEIGHT = 0.5  # naming the subject counts less than saying what is asked about it


def coverage(q: Question, s: Sentence, *, whole_memory: bool = False) -> float:
    """Share of what the question is about that the sentence (or its memory) holds: its focus
    words, and its subject when that is someone other than the user (a turn's speaker counts
    as naming them)."""
    text = s.memory_text if whole_memory and s.memory_text else s.text
    focus = focus_stems(q)
    have = [stem(w) for w in content_words(text)]
    hits = float(sum(1 for f in focus if any(same_word(f, h) for h in have)))
    total = float(len(focus))
    if not q.about_user:
        total += SUBJECT_WEIGHT
        if re.search(rf"\b{re.escape(q.subject)}", text, re.I) or same_person(s.speaker, q.subject):
            hits += SUBJECT_WEIGHT
    return hits / total if total else 1.0


def focus_coverage(q: Question, text: str) -> float:
    """Share of the question's focus words a text holds (who said it does not count)."""
    focus = focus_stems(q)
    have = [stem(w) for w in content_words(text)]
    return (
        sum(1 for f in focus if any(same_word(f, h) for h in have)) / len(focus) if focus else 0.0
    )


def event_day(s: Sentence) -> str:
    return dates_.format_day(s.when.date())
