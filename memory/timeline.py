"""Time awareness: which life "slot" a memory updates (home, employer, phone, ...).

A memory that states the user's current home, job, phone or email gets a topic. Among the
memories of one topic the newest (by event time) is current and every older one is marked
superseded by it: kept, searchable, but ranked below what replaced it.
"""

from __future__ import annotations

import re

# topic -> first-person statements that set it. Order matters: the first match wins.
TOPIC_PATTERNS: dict[str, list[str]] = {
    "phone": [
        r"\bmy (?:new )?(?:phone|mobile|cell)(?: phone)?(?: number)? (?:is|was|has changed|changed|:)",
        r"\bmy new (?:phone |mobile )?number\b",
        r"\b(?:i|we) (?:got|have) a new (?:phone|mobile) number\b",
    ],
    "email": [
        r"\bmy (?:new )?(?:personal )?e-?mail(?: address)? (?:is|has changed|changed|:)",
        r"\bmy new e-?mail\b",
    ],
    "residence": [
        r"\b(?:i|we) (?:have |had |just |finally )?(?:moved|relocated)\b",
        r"\b(?:i|we) (?:now |currently )?live (?:in|at|on)\b",
        r"\bmy (?:new |home |current )*address (?:is|:)",
        r"\b(?:i|we) (?:bought|rented|rent) (?:a|an|our) (?:new )?(?:house|flat|apartment|home)\b",
    ],
    "employer": [
        r"\b(?:i|i've|i have) (?:just )?(?:started|began|start|joined|join)\b.{0,40}\b(?:job|work|working|position|role)?\b.{0,20}\b(?:at|with|for)\b",
        r"\b(?:i|i've) (?:now )?work(?:ed)? (?:at|for)\b",
        r"\b(?:i|i've|i have) (?:just |now )?joined (?!a |an |the |my |our )\w+",
        r"\bmy (?:new )?(?:job|employer|company) (?:is|at)\b",
        r"\b(?:i|i've|i have) (?:got|accepted|taken) (?:a|an|the) (?:new )?(?:job|offer|position)\b",
        r"\b(?:i was|i've been|i got) hired\b",
    ],
    "job_title": [
        r"\b(?:i was|i've been|i got|i have been) promoted\b",
        r"\b(?:joined|started|start|hired|working|work|began)\b.{0,60}\bas (?:a |an |the |our |their )?(?:new )?[a-z]+",
        r"\bmy (?:new )?(?:job )?title (?:is|:)",
        r"\bmy new role\b",
    ],
}

_COMPILED = {t: [re.compile(p, re.IGNORECASE) for p in ps] for t, ps in TOPIC_PATTERNS.items()}


def detect_topics(text: str) -> list[str]:
    """The life slots a first-person memory sets, primary (first matched) first."""
    head = text[:600]
    return [topic for topic, patterns in _COMPILED.items() if any(p.search(head) for p in patterns)]


def detect_topic(text: str) -> str | None:
    """Space-separated topics as stored in the `topic` column (primary first), or None."""
    topics = detect_topics(text)
    return " ".join(topics) if topics else None


# Questions that ask for the current value of a slot.
QUERY_TOPICS: dict[str, re.Pattern[str]] = {
    "phone": re.compile(r"\b(phone|mobile|cell)\b|\bnumber\b", re.I),
    "email": re.compile(r"\be-?mail\b", re.I),
    "residence": re.compile(r"\bwhere (?:do|does) (?:i|we) live\b|\b(?:home )?address\b|\bwhich city\b|\bwhere.{0,20}\blive\b|\bhometown\b", re.I),
    "job_title": re.compile(r"\b(?:job )?title\b|\bposition\b|\brole\b", re.I),
    "employer": re.compile(r"\bwhere (?:do|does) (?:i|we) work\b|\bemployer\b|\bwhich company\b|\bwho do i work for\b|\bwork(?:ing)? (?:at|for)\b", re.I),
}

_PAST = re.compile(
    r"\b(before|previous(?:ly)?|used to|former(?:ly)?|old|first|earlier|originally|back in|in (?:19|20)\d\d|"
    r"when did|did i (?:live|work)|was my|were my|history)\b",
    re.I,
)
_YEAR = re.compile(r"\b((?:19|20)\d\d)\b")


def query_topic(query: str) -> str | None:
    for topic, pattern in QUERY_TOPICS.items():
        if pattern.search(query):
            return topic
    return None


def asks_about_past(query: str) -> bool:
    return bool(_PAST.search(query))


def query_year(query: str) -> int | None:
    m = _YEAR.search(query)
    return int(m.group(1)) if m else None
