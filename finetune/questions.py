"""Question templates: how people ask about a fact, by topic, plus never-remembered topics.

A memory matching a topic's pattern gets the topic's questions, plus questions built from
the words that matched ("cat" -> "What is my cat's name?"): people ask about the thing they
own, not about the topic's name. Every memory also gets generic questions from its names,
content words and date. A superseded memory gets the topic's past-tense questions ("Where
did I live before?"), never the present-tense ones. Abstention questions come from a bank,
skipped for topics and words the user did mention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ABSTAIN_ANSWER = "I have no memory of that. You haven't told me about it."

IDENTITY_QA: tuple[tuple[str, str], ...] = (
    ("Who are you?", "I am memex, your personal memory. I answer from what you have told me."),
    (
        "What can you do?",
        "I remember what you tell me and answer questions about your life from it.",
    ),
)


@dataclass(frozen=True)
class Topic:
    """How a person asks about one kind of fact; `{w}` in `keyed` is a word that matched."""

    pattern: str  # over lower-cased text
    questions: tuple[str, ...]  # asked about the current fact
    past: tuple[str, ...] = ()  # asked about a superseded one
    keyed: tuple[str, ...] = ()
    key_pattern: str = ""  # which matched words fill `{w}` (default: `pattern`)


TOPICS: dict[str, Topic] = {
    "home": Topic(
        r"\b(live|living|moved|move|apartment|flat|house|neighbou?rhood|rent)\b",
        (
            "Where do I live?",
            "Which city is my home now?",
            "Where did I move to?",
            "What do you know about my home?",
            "What is my address?",
            "Where is my home?",
        ),
        past=(
            "Where did I live before?",
            "Where did I use to live?",
            "Which city did I live in earlier?",
        ),
    ),
    "work": Topic(
        r"\b(job|work|working|hired|company|employer|boss|colleague|office|promoted|position|role|"
        r"engineer|analyst|manager|developer|designer|head of)\b",
        (
            "Where do I work?",
            "What is my job?",
            "Who do I work for?",
            "What do I do for a living?",
            "Which company do I work at?",
        ),
        past=(
            "Where did I work before?",
            "What was my previous job?",
            "Which company did I work for earlier?",
        ),
    ),
    "pet": Topic(
        r"\b(dog|cat|pet|puppy|kitten|parrot|rabbit|hamster)\b",
        ("Do I have a pet?", "What is my pet called?", "Tell me about my pet."),
        keyed=("What is my {w}'s name?", "What is my {w} called?", "Tell me about my {w}."),
    ),
    "tel": Topic(
        r"\b(phone|mobile|cell)\b",
        (
            "What is my phone number?",
            "Which number can people call me on?",
            "What's my mobile number?",
        ),
        past=("What was my old phone number?", "Which phone number did I have before?"),
    ),
    "email": Topic(
        r"\b(e-?mail)\b",
        ("What is my email address?", "Which email do I use?", "What's my email?"),
        past=("What was my old email address?", "Which email did I use before?"),
    ),
    "bday": Topic(
        r"\b(birthday|born)\b", ("When is my birthday?", "When was I born?", "Where was I born?")
    ),
    "partner": Topic(
        r"\b(wife|husband|partner|girlfriend|boyfriend|married|engaged|fianc[eé]e?|wedding)\b",
        ("Who is my partner?", "Am I married or in a relationship?", "What is my partner's name?"),
        keyed=("Tell me about when I got {w}.", "Where did I get {w}?"),
    ),
    "health": Topic(
        r"\b(allerg\w*|doctor|dentist|diagnos\w*|medication|asthma|injur\w*)\b",
        ("Do I have any health issues I mentioned?", "What did I tell you about my health?"),
        keyed=("What did the {w} say?", "What did my {w} tell me?"),
        key_pattern=r"\b(doctor|dentist|allergist|physio\w*|surgeon)\b",
    ),
    "vehicle": Topic(
        r"\b(car|bike|bicycle|scooter|motorbike|drive)\b",
        ("What do I drive or ride?", "Tell me about my car or bike."),
        keyed=("What happened to my {w}?", "Tell me about my {w}."),
    ),
    "learning": Topic(
        r"\b(learn\w*|class|course|lessons?|studying|study|language|tutor)\b",
        ("What am I learning?", "Which course or lessons am I taking?"),
    ),
    "music": Topic(
        r"\b(cello|piano|guitar|violin|drums|flute|saxophone|instrument|choir|recital|concert)\b",
        ("What instrument do I play?", "Do I play music?", "Tell me about my music."),
        keyed=("What do you know about my {w}?",),
    ),
    "sport": Topic(
        r"\b(run|ran|running|marathon|gym|swim\w*|yoga|climb\w*|boulder\w*|surf\w*|football|tennis|"
        r"cycling|hike|hiking)\b",
        ("What sport do I do?", "How do I keep fit?"),
        keyed=("Tell me about my {w}.", "What do you know about my {w}?"),
        key_pattern=r"\b(marathon|gym|swimming|yoga|climbing|bouldering|surfing|football|tennis|cycling|hiking)\b",
    ),
    "reading": Topic(
        r"\b(book|novel|read|reading|library)\b",
        ("Which book did I read?", "What am I reading?"),
        keyed=("Tell me about my {w}.",),
    ),
    "travel": Topic(
        r"\b(trip|travel\w*|flew|flight|visited|vacation|holiday)\b",
        ("Where did I travel?", "Tell me about my last trip."),
    ),
    "family": Topic(
        r"\b(mother|father|mum|mom|dad|sister|brother|son|daughter|grandma|grandpa|aunt|uncle)\b",
        ("What do you know about my family?", "Tell me about my relatives."),
        keyed=("What do you know about my {w}?", "What did my {w} do?"),
    ),
    "food": Topic(
        r"\b(favou?rite|food|dish|vegetarian|vegan|coffee|tea|restaurant)\b",
        ("What food do I like?", "What are my favourite things?", "What is my favourite dish?"),
    ),
}

# (topic or "" for none, words whose mention skips it, question) -- never-remembered things
ABSTAIN_BANK: tuple[tuple[str, str, str], ...] = (
    ("pet", "horse", "What is the name of my horse?"),
    ("vehicle", "boat", "What colour is my boat?"),
    ("vehicle", "licence|license|plate", "What is the licence plate of my car?"),
    ("health", "blood", "What is my blood type?"),
    ("health", "medication|pills", "Which medication do I take every day?"),
    ("family", "grandfather", "What is my grandfather's middle name?"),
    ("family", "cousin", "What is my cousin's name?"),
    ("family", "nephew", "What is my nephew called?"),
    ("travel", "antarctica", "When did I visit Antarctica?"),
    ("travel", "iceland", "Which hotel did I stay at in Iceland?"),
    ("learning", "pilot", "What grade did I get in my pilot's licence exam?"),
    ("sport", "triathlon", "What was my time in the Tokyo triathlon?"),
    ("sport", "golf", "What is my golf handicap?"),
    ("bday", "bartholomew", "When is my cousin Bartholomew's birthday?"),
    ("", "pin", "What is the PIN of my bank card?"),
    ("", "teacher", "What is the name of my first teacher?"),
    ("", "lottery", "Which lottery numbers did I play last week?"),
    ("", "dream", "What did I dream about last night?"),
    ("", "shoe", "What is my shoe size?"),
    ("", "tattoo", "Which tattoo do I have?"),
    ("", "locker", "What is my locker combination at the gym?"),
    ("", "neighbour|neighbor", "What is my neighbour's dog called?"),
    ("", "wifi|password", "What is the wifi password at my office?"),
    ("", "insurance", "What is my health insurance number?"),
    ("", "tax", "What is my tax ID?"),
    ("", "landlord", "What is my landlord's name?"),
    ("", "colour|color", "What is my favourite colour?"),
    ("", "movie|film", "What is my favourite movie?"),
    ("", "podcast", "Which podcast do I listen to?"),
    ("", "game|games", "Which video games do I play?"),
    ("", "height|tall", "How tall am I?"),
    ("", "religion|church", "Which church do I go to?"),
    ("", "stocks|shares", "Which stocks do I own?"),
    ("", "childhood", "What was my childhood nickname?"),
    ("", "garden", "What do I grow in my garden?"),
    ("", "airline", "Which airline do I fly most often?"),
    ("", "password", "What is my email password?"),
    ("", "kindergarten", "Which kindergarten did I go to?"),
    ("", "mortgage", "How much is my mortgage?"),
    ("", "bakery", "What is my favourite bakery?"),
)

# WHATWG autocomplete names -> how a person says them
PROFILE_LABELS: dict[str, str] = {
    "name": "full name",
    "given-name": "first name",
    "family-name": "last name",
    "email": "email address",
    "tel": "phone number",
    "street-address": "street address",
    "address-level2": "city",
    "address-level1": "region",
    "postal-code": "postal code",
    "country-name": "country",
    "country": "country",
    "bday": "birthday",
    "organization": "employer",
    "organization-title": "job title",
    "url": "website",
}


def topics_of(text: str) -> set[str]:
    low = text.lower()
    return {name for name, topic in TOPICS.items() if re.search(topic.pattern, low)}


_HONORIFICS = {"Dr", "Mr", "Mrs", "Ms", "St", "Prof", "Frau", "Herr"}
_CALENDAR = {
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
}


def _names(text: str) -> list[str]:
    """Runs of capitalized words that are not sentence starts or pronouns: names, places.

    "Dr. Okafor" stays one name (the dot after an honorific ends no sentence); weekdays and
    months are not names (the date questions cover them).
    """
    out: list[str] = []
    run: list[str] = []
    prev_end = 0
    for m in re.finditer(r"[^\W\d_]+", text):
        w = m.group(0)
        gap = text[prev_end : m.start()]
        prev_end = m.end()
        before = text[: m.start()].rstrip()
        after_honorific = bool(run) and run[-1] in _HONORIFICS and gap.strip() == "."
        sentence_start = (not before or before[-1] in ".!?:;") and not after_honorific
        is_name = (
            w[0].isupper()
            and (len(w) == 1 or w[1:].islower())
            and not sentence_start
            and w not in {"I", "My", "We", "Our"}
            and w not in _CALENDAR
        )
        if is_name and (not run or gap.strip() == "" or after_honorific):
            run.append(w)
            continue
        if run:
            out.append(_join(run))
        run = [w] if is_name else []
    if run:
        out.append(_join(run))
    return list(dict.fromkeys(n for n in out if len(n) > 1 and n not in _HONORIFICS))


def _join(run: list[str]) -> str:
    return " ".join(w + "." if w in _HONORIFICS - {"Frau", "Herr"} else w for w in run)


_STOP = set(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "but",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "is",
        "was",
        "were",
        "be",
        "been",
        "it",
        "this",
        "that",
        "these",
        "today",
        "yesterday",
        "tomorrow",
        "just",
        "very",
        "really",
        "got",
        "get",
        "new",
        "now",
        "then",
        "so",
        "also",
        "about",
        "after",
        "before",
        "there",
        "their",
        "they",
        "them",
        "he",
        "she",
        "his",
        "her",
        "its",
        "into",
        "out",
        "up",
        "down",
        "over",
        "more",
        "most",
        "some",
        "any",
        "one",
        "two",
        "you",
        "your",
        "have",
        "has",
        "had",
        "will",
        "would",
        "can",
        "could",
        "did",
        "do",
        "does",
        "not",
        "no",
        "yes",
        "my",
        "our",
        "we",
        "us",
        "me",
        "i",
        "am",
        "first",
        "every",
        "always",
        "about",
        "near",
        "small",
        "said",
        "says",
        "called",
        "confirmed",
        "started",
        "joined",
        "named",
        "ever",
        "only",
        "about",
        "around",
        "times",
        "week",
        "month",
        "year",
    ]
)


def content_words(text: str, n: int = 3) -> list[str]:
    """The longest lower-case content words: a cheap stand-in for the memory's subject."""
    words = [w for w in re.findall(r"\b[a-z][a-z'-]{3,}\b", text) if w not in _STOP]
    return sorted(dict.fromkeys(words), key=len, reverse=True)[:n]


def _keyed(topic: Topic, low: str) -> list[str]:
    words = list(
        dict.fromkeys(m.group(0) for m in re.finditer(topic.key_pattern or topic.pattern, low))
    )[:2]
    return [t.format(w=w) for w in words for t in topic.keyed]


def questions_for(text: str, date: str, *, superseded: bool = False) -> list[str]:
    """Several phrasings of questions this memory answers (past tense when superseded)."""
    low = text.lower()
    qs: list[str] = []
    for name in sorted(topics_of(text)):
        topic = TOPICS[name]
        qs.extend(topic.past if superseded else topic.questions)
        if not superseded:
            qs.extend(_keyed(topic, low))
    for name in _names(text)[:3]:
        qs.append(f"What do you remember about {name}?")
        qs.append(f"What have I told you about {name}?")
    for word in content_words(text, 2):
        qs.append(f"What did I say about {word}?")
    qs.append(f"What happened on {date}?" if not superseded else f"What did I note on {date}?")
    if not superseded:
        qs.append(f"What did I write down on {date}?")
    return list(dict.fromkeys(qs))


def spoken_value(key: str, value: str) -> str:
    """A profile value as a person says it: ISO dates become '17 April 1991'."""
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", value.strip())
    if key == "bday" and m:
        months = (
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        )
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if 1 <= month <= 12:
            return f"{day} {months[month - 1]} {year}"
    return value


def profile_questions(key: str, value: str) -> list[tuple[str, str]]:
    label = PROFILE_LABELS.get(key, key.replace("-", " "))
    answer = f"Your {label} is {spoken_value(key, value)}."
    return [
        (f"What is my {label}?", answer),
        (f"Tell me my {label}.", answer),
        (f"Do you know my {label}?", answer),
        (f"What's my {label}?", answer),
    ]


def abstention_bank(covered_topics: set[str], mentioned_text: str) -> list[list[str]]:
    """Bank questions (each with its rephrasings) about topics and words never mentioned."""
    low = mentioned_text.lower()
    return [
        rephrase(q)
        for topic, words, q in ABSTAIN_BANK
        if topic not in covered_topics and not re.search(rf"\b({words})\b", low)
    ]


def rephrase(question: str) -> list[str]:
    """The question and simple rewordings of it ("What is my X?" -> "Do you know my X?")."""
    out = [question]
    m = re.fullmatch(r"What is (my|the) (.+)\?", question)
    if m:
        out += [f"Do you know {m.group(1)} {m.group(2)}?", f"Tell me {m.group(1)} {m.group(2)}."]
    else:
        out.append("Do you remember: " + question[0].lower() + question[1:])
    return out
