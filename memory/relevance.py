"""Is anything relevant remembered? Decided from retrieval signals, never by the model alone.

A bi-encoder similarity by itself does not separate "What is my cat's name?" (remembered)
from "What is my dog's name?" (never remembered): both score ~0.45 against the cat note.
So relevance combines three signals:

1. similarity of the memory to the question (all-MiniLM-L6-v2 cosine);
2. the question's *specific* words (not stop words, not generic words like "name" or
   "number", not the words that name a life slot): if none of them occurs in any retrieved
   memory, the question is about something never remembered unless similarity is very high;
3. the life slot (residence, employer, phone, ...) a question asks about and the slot a
   memory updates (memory.timeline): the current memory of that slot answers it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from memory import timeline
from memory.types import SearchHit

MIN_SIMILARITY = 0.30
MIN_SIMILARITY_SHARED_WORD = 0.24  # a memory that shares a specific word needs less support
# A chat turn is embedded with its speaker, date and the turn it answers, so a question's
# similarity to it reads lower than to a note saying the same; the shared word decides more.
MIN_SIMILARITY_SHARED_WORD_TURN = 0.10
STRONG_SIMILARITY = 0.55  # relevant even when none of the question's specific words occur

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "i'm",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "mine",
        "of",
        "on",
        "or",
        "our",
        "ours",
        "she",
        "he",
        "her",
        "his",
        "that",
        "the",
        "their",
        "them",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "about",
        "am",
        "into",
        "than",
        "then",
        "so",
        "if",
        "not",
        "no",
        "any",
        "all",
        "some",
        "s",
        "t",
    ]
)
# Words that appear in many questions without saying what they are about.
GENERIC = frozenset(
    [
        "name",
        "names",
        "called",
        "number",
        "numbers",
        "time",
        "times",
        "current",
        "currently",
        "now",
        "new",
        "old",
        "first",
        "last",
        "happened",
        "happen",
        "thing",
        "things",
        "kind",
        "sort",
        "type",
        "many",
        "much",
        "long",
        "ever",
        "still",
        "today",
        "day",
        "year",
        "years",
        "ago",
        "recently",
        "get",
        "got",
        "go",
        "went",
        "tell",
        "know",
        "remember",
        "say",
        "said",
    ]
)
# Irregular forms the crude stemmer cannot join; tiny on purpose.
LEMMAS: Mapping[str, str] = {
    "sold": "sell",
    "bought": "buy",
    "ran": "run",
    "met": "meet",
    "born": "birth",
    "birthday": "birth",
    "wed": "marri",
    "wedding": "marri",
    "married": "marri",
    "marry": "marri",
    "went": "go",
    "gone": "go",
    "taught": "teach",
    "began": "begin",
    "begun": "begin",
    "wrote": "write",
    "written": "write",
    "moved": "move",
    "lives": "live",
    "lived": "live",
    "got": "get",
    "gotten": "get",
    "had": "have",
    "has": "have",
    "made": "make",
    "took": "take",
    "taken": "take",
    "saw": "see",
    "seen": "see",
    "did": "do",
    "done": "do",
    "came": "come",
    "gave": "give",
    "given": "give",
    "found": "find",
    "left": "leave",
    "felt": "feel",
    "paid": "pay",
    "spent": "spend",
    "told": "tell",
    "thought": "think",
    "kept": "keep",
    "heard": "hear",
    "won": "win",
    "lost": "lose",
    "brought": "bring",
    "caught": "catch",
    "chose": "choose",
    "drove": "drive",
    "ate": "eat",
    "fell": "fall",
    "flew": "fly",
    "grew": "grow",
    "knew": "know",
    "rode": "ride",
    "sang": "sing",
    "sat": "sit",
    "spoke": "speak",
    "stood": "stand",
    "swam": "swim",
    "threw": "throw",
    "wore": "wear",
    "died": "die",
    "dies": "die",
    "dead": "die",
    "death": "die",
    "children": "child",
    "kids": "child",
    "kid": "child",
    "men": "man",
    "women": "woman",
    "people": "person",
    "feet": "foot",
    "mice": "mouse",
    "built": "build",
}
SLOT_FAMILIES: Mapping[str, frozenset[str]] = {
    "employer": frozenset({"employer", "job_title"}),
    "job_title": frozenset({"employer", "job_title"}),
    "residence": frozenset({"residence"}),
    "phone": frozenset({"phone"}),
    "email": frozenset({"email"}),
}


def stem(word: str) -> str:
    w = word.lower()
    if w in LEMMAS:
        return LEMMAS[w]
    for suffix in (
        "ations",
        "ation",
        "ingly",
        "ings",
        "ing",
        "edly",
        "ies",
        "ied",
        "ed",
        "es",
        "ly",
        "s",
    ):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            # studied / studies / study share one stem
            w = w[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
            break
    return LEMMAS.get(w, w)


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text.replace("'s ", " ").replace("’s ", " "))]


def specific_terms(question: str) -> set[str]:
    """Stems of the words that say what the question is about."""
    slot = timeline.query_topic(question)
    slot_words: set[str] = set()
    if slot:
        for m in timeline.QUERY_TOPICS[slot].finditer(question):
            slot_words.update(words(m.group(0)))
    return {
        stem(w)
        for w in words(question)
        if w not in STOP and w not in GENERIC and w not in slot_words and len(w) > 1
    }


def _covers(term: str, stems: set[str]) -> bool:
    # Prefix match catches what the crude stemmer misses (photograph/photography).
    return any(
        s == term or (len(term) >= 5 and len(s) >= 5 and (s.startswith(term) or term.startswith(s)))
        for s in stems
    )


def _modifies_slot(question: str, slot: str | None, terms: set[str]) -> bool:
    """A specific word right before the slot's word names another thing of that kind:
    "passport number" is not the phone number."""
    m = timeline.QUERY_TOPICS[slot].search(question) if slot in timeline.QUERY_TOPICS else None
    before = words(question[: m.start()])[-1:] if m else []
    return bool(before) and stem(before[0]) in terms


@dataclass(frozen=True)
class Judgement:
    relevant: list[SearchHit]
    slot_ids: frozenset[str]  # ids relevant because they hold the asked-about slot
    unknown_terms: frozenset[str]


def judge(question: str, hits: Sequence[SearchHit], topics: Mapping[str, str | None]) -> Judgement:
    """The hits the answer may rest on (retrieval order); empty means abstain.

    `topics` maps hit id -> the memory's slot topics (space-separated), from MemoryStore.get.
    """
    past = timeline.asks_about_past(question)
    slot = timeline.query_topic(question)
    family = SLOT_FAMILIES.get(slot, frozenset({slot})) if slot else frozenset()
    family = family | {f"open_{f}" for f in family}  # "switched to a vegan diet" sets it too
    terms = specific_terms(question)
    stems_by_hit = {h.id: {stem(w) for w in words(h.text)} for h in hits}
    known = {t for t in terms if any(_covers(t, s) for s in stems_by_hit.values())}
    unknown = frozenset(terms - known)
    best = max((h.similarity for h in hits if h.similarity is not None), default=0.0)
    holds_slot = (
        bool(family)
        and not _modifies_slot(question, slot, terms)
        and any(set((topics.get(h.id) or "").split()) & family for h in hits)
    )
    # Every specific word is absent from what was found: a question about something new
    # (unless a memory holds the asked-about slot: "what diet do I follow" has its answer).
    never_remembered = bool(terms) and not known and best < STRONG_SIMILARITY and not holds_slot

    relevant: list[SearchHit] = []
    slot_ids: set[str] = set()
    if never_remembered:
        return Judgement([], frozenset(), unknown)
    for hit in hits:
        if hit.superseded_by and not past and slot:
            continue  # its replacement answers a present-tense question about the slot
        hit_slots = set((topics.get(hit.id) or "").split())
        if family and hit_slots & family and (past or not hit.superseded_by):
            relevant.append(hit)
            slot_ids.add(hit.id)
            continue
        sim = hit.similarity
        shares = any(_covers(t, stems_by_hit[hit.id]) for t in terms)
        if sim is None:
            # Found by its words alone (the vector side ranked it lower): it counts when it
            # holds a specific word of the question ("picnic" in "We even had a picnic").
            if shares:
                relevant.append(hit)
            continue
        shared_min = MIN_SIMILARITY_SHARED_WORD_TURN if hit.speaker else MIN_SIMILARITY_SHARED_WORD
        if sim >= MIN_SIMILARITY or (shares and sim >= shared_min):
            relevant.append(hit)
    return Judgement(relevant, frozenset(slot_ids), unknown)
