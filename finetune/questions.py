"""Question templates: how people ask about a fact, by topic, plus never-remembered topics.

Rules are (topic, pattern, questions); a memory matching a pattern gets those questions,
and every memory also gets generic ones built from its names and date. Abstention questions
come from a bank per topic, skipped for topics the user did mention.
"""

from __future__ import annotations

import re

ABSTAIN_ANSWER = "I have no memory of that. You haven't told me about it."

IDENTITY_QA: tuple[tuple[str, str], ...] = (
    ("Who are you?", "I am memex, your personal memory. I answer from what you have told me."),
    ("What can you do?", "I remember what you tell me and answer questions about your life from it."),
)

# topic -> (pattern over lower-cased text, questions a person might ask)
TOPIC_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "home": (r"\b(live|living|moved|move|apartment|flat|house|neighbou?rhood|rent)\b", (
        "Where do I live?", "Which city is my home now?", "Where did I move to?",
        "What do you know about my home?")),
    "work": (r"\b(job|work|working|hired|company|employer|boss|colleague|office|promoted|position|role)\b", (
        "Where do I work?", "What is my job?", "Who do I work for?", "What do I do for a living?")),
    "pet": (r"\b(dog|cat|pet|puppy|kitten|parrot|rabbit|hamster)\b", (
        "Do I have a pet?", "What is my pet called?", "Tell me about my pet.")),
    "tel": (r"\b(phone|mobile|cell)\b", (
        "What is my phone number?", "Which number can people call me on?", "What's my mobile number?")),
    "email": (r"\b(e-?mail)\b", ("What is my email address?", "Which email do I use?")),
    "bday": (r"\b(birthday|born)\b", ("When is my birthday?", "When was I born?")),
    "partner": (r"\b(wife|husband|partner|girlfriend|boyfriend|married|engaged|fianc[eé]e?)\b", (
        "Who is my partner?", "Am I married or in a relationship?", "What is my partner's name?")),
    "health": (r"\b(allerg\w*|doctor|dentist|diagnos\w*|medication|asthma|injur\w*)\b", (
        "Do I have any health issues I mentioned?", "What did I tell you about my health?",
        "What am I allergic to?")),
    "vehicle": (r"\b(car|bike|bicycle|scooter|motorbike|drive)\b", (
        "What do I drive or ride?", "Tell me about my car or bike.")),
    "learning": (r"\b(learn\w*|class|course|lessons?|studying|study|language)\b", (
        "What am I learning?", "Which course or lessons am I taking?")),
    "sport": (r"\b(run|running|marathon|gym|swim\w*|yoga|climb\w*|football|tennis|cycling|hike|hiking)\b", (
        "What sport do I do?", "How do I keep fit?")),
    "travel": (r"\b(trip|travel\w*|flew|flight|visited|vacation|holiday)\b", (
        "Where did I travel?", "Tell me about my last trip.")),
    "family": (r"\b(mother|father|mum|mom|dad|sister|brother|son|daughter|grandma|grandpa|aunt|uncle)\b", (
        "What do you know about my family?", "Tell me about my relatives.")),
    "food": (r"\b(favou?rite|food|dish|vegetarian|vegan|coffee|tea|restaurant)\b", (
        "What food do I like?", "What are my favourite things?")),
}

ABSTAIN_BANK: dict[str, tuple[str, ...]] = {
    "pet": ("What is the name of my horse?",),
    "vehicle": ("What colour is my boat?",),
    "health": ("What is my blood type?",),
    "family": ("What is my grandfather's middle name?",),
    "travel": ("When did I visit Antarctica?",),
    "learning": ("What grade did I get in my pilot's licence exam?",),
    "sport": ("What was my time in the Tokyo triathlon?",),
    "bday": ("When is my cousin Bartholomew's birthday?",),
    "misc1": ("What is the PIN of my bank card?",),
    "misc2": ("What is the name of my first teacher?",),
    "misc3": ("Which lottery numbers did I play last week?",),
    "misc4": ("What did I dream about last night?",),
    "misc5": ("What is my shoe size?",),
    "misc6": ("Which tattoo do I have?",),
    "misc7": ("What is my locker combination at the gym?",),
    "misc8": ("What is my neighbour's dog called?",),
    "misc9": ("What is the wifi password at my office?",),
}

# WHATWG autocomplete names -> how a person says them
PROFILE_LABELS: dict[str, str] = {
    "name": "full name", "given-name": "first name", "family-name": "last name",
    "email": "email address", "tel": "phone number", "street-address": "street address",
    "address-level2": "city", "address-level1": "region", "postal-code": "postal code",
    "country-name": "country", "country": "country", "bday": "birthday",
    "organization": "employer", "organization-title": "job title", "url": "website",
}


def topics_of(text: str) -> set[str]:
    low = text.lower()
    return {topic for topic, (pat, _) in TOPIC_RULES.items() if re.search(pat, low)}


def _names(text: str) -> list[str]:
    """Runs of capitalized words that are not sentence starts or pronouns: names, places."""
    out: list[str] = []
    run: list[str] = []
    prev_end = 0
    for m in re.finditer(r"[^\W\d_]+", text):
        w = m.group(0)
        gap = text[prev_end:m.start()]
        prev_end = m.end()
        before = text[: m.start()].rstrip()
        sentence_start = not before or before[-1] in ".!?:;"
        is_name = (w[0].isupper() and (len(w) == 1 or w[1:].islower()) and not sentence_start
                   and w not in {"I", "My", "We", "Our"})
        if is_name and (not run or gap.strip() == ""):
            run.append(w)
            continue
        if run:
            out.append(" ".join(run))
        run = [w] if is_name else []
    if run:
        out.append(" ".join(run))
    return list(dict.fromkeys(n for n in out if len(n) > 1))


_STOP = set(
    ["the", "a", "an", "and", "or", "but", "to", "of", "in", "on", "at", "for", "with", "from", "by", "is", "was", "were", "be", "been", "it", "this", "that", "these", "today", "yesterday", "tomorrow", "just", "very", "really", "got", "get", "new", "now", "then", "so", "also", "about", "after", "before", "there", "their", "they", "them", "he", "she", "his", "her", "its", "into", "out", "up", "down", "over", "more", "most", "some", "any", "one", "two", "you", "your", "have", "has", "had", "will", "would", "can", "could", "did", "do", "does", "not", "no", "yes", "my", "our", "we", "us", "me", "i", "am", "first", "every", "always", "about", "near", "small", "said", "says", "called"]
)


def content_words(text: str, n: int = 3) -> list[str]:
    """The longest lower-case content words: a cheap stand-in for the memory's subject."""
    words = [w for w in re.findall(r"\b[a-z][a-z'-]{3,}\b", text) if w not in _STOP]
    return sorted(dict.fromkeys(words), key=len, reverse=True)[:n]


def questions_for(text: str, date: str) -> list[str]:
    """Several phrasings of questions this memory answers."""
    qs: list[str] = []
    for topic in sorted(topics_of(text)):
        qs.extend(TOPIC_RULES[topic][1])
    for name in _names(text)[:3]:
        qs.append(f"What do you remember about {name}?")
        qs.append(f"What have I told you about {name}?")
    for word in content_words(text):
        qs.append(f"What do you know about my {word}?")
    qs.append(f"What happened on {date}?")
    qs.append(f"What did I write down on {date}?")
    return qs


def profile_questions(key: str, value: str) -> list[tuple[str, str]]:
    label = PROFILE_LABELS.get(key, key.replace("-", " "))
    answer = f"Your {label} is {value}."
    return [
        (f"What is my {label}?", answer),
        (f"Tell me my {label}.", answer),
        (f"Do you know my {label}?", answer),
    ]


def abstention_bank() -> list[tuple[str, str]]:
    return [(topic, q) for topic, qs in ABSTAIN_BANK.items() for q in qs]
