"""Who a sentence is about, in notes and in conversations.

A note is the user's own; a chat turn is its speaker's, unless it is said to someone ("Your
store looks great, Ana!") or asks something. A reply is read with what the turn before it
asked, so the question's words split across the two still find the answer.
"""

from __future__ import annotations

import re
from dataclasses import replace

from app.answer.question import Question, same_person
from app.answer.sentences import Sentence, coverage, split_sentences

_FIRST_PERSON = re.compile(
    (
        r"\b(?:i|i'm|i've|i'd|me|we|we're|we've|us)\b"
        r"|\b(?:my|our)\b(?!\s+(?:\w+\s+)?(?:{})\b)"
    ).format(
        "|".join(
            "sister brother mother father mom mum dad son daughter wife husband partner friend "
            "boss manager colleague neighbour neighbor grandma grandpa aunt uncle cousin niece "
            "nephew dentist doctor".split()
        )
    ),
    re.I,
)
_LEADING_OTHER = re.compile(r"^(?:(?:my|our)\s+(?:\w+\s+)?\w+|[A-Z][\w'’-]+)\b")


_SECOND_PERSON = re.compile(r"\b(?:you|your|yours|you're|you've|you'd|ya)\b", re.I)
_FIRST_ONLY = re.compile(r"\b(?:i|i'm|i've|i'd|me|my|mine|we|we're|we've|our|us)\b", re.I)


# "That race sounds great, Mel!", "Wow, that's great!": a sentence said to someone (with no
# "I" or "we" in it) is about them.
_VOCATIVE = re.compile(r",\s*[A-Z][\w'’-]+\s*[!.?]*$|^[A-Z][\w'’-]+,\s")


_YOU_FIRST = re.compile(r"^(?:\W*\w+,\s*)?(?:you|your|you're|you've|you'll)\b", re.I)


def addressed(text: str) -> bool:
    """Said to someone ("you", "Thanks, Mel!") with no "I" or "we" in it."""
    if _YOU_FIRST.match(text):
        return True  # "Your store looks great, I remember it!": its subject is the listener
    to = _SECOND_PERSON.search(text) or _VOCATIVE.search(text)
    return bool(to) and not _FIRST_ONLY.search(text)


def names(text: str, name: str) -> bool:
    """Whether a text speaks of someone by name, not merely to them ("Thanks, Mel!")."""
    return bool(re.search(rf"\b{re.escape(name)}\w*\b(?!\s*[,!?]|\s*$)", text, re.I))


def own_statements(text: str) -> str:
    """What a turn's speaker states: its sentences less questions and what is said to someone."""
    return " ".join(
        text[a:b]
        for a, b in split_sentences(text)
        if not text[a:b].endswith("?") and not addressed(text[a:b])
    )


_GREETING = frozenset(
    "thanks thank hey hi hello wow yeah yep yes oh ah aw ok okay sure cool great awesome nice "
    "haha lol omg totally absolutely definitely congrats congratulations".split()
)


def contentless(text: str) -> bool:
    """A greeting or thanks to someone by name ("Thanks, Caroline!", "Hey Jon!"): nothing in
    it can answer a question."""
    words = re.findall(r"[\w'’]+", text)
    if not any(w.lower() in _GREETING for w in words):
        return False
    said = [w for w in words if not w[:1].isupper() or w == "I"]
    return not [w for w in said if w.lower() not in _GREETING]


def is_question(s: Sentence) -> bool:
    return s.text.rstrip().endswith("?")


def speaks_about(q: Question, s: Sentence) -> bool:
    """Whether a sentence is about the question's named subject.

    A question asserts nothing. In a chat turn "your store" said by the subject is the other
    person's store, and "you" said to the subject is about the subject; a turn by someone
    else is about the subject only when it names them or speaks to them.
    """
    if is_question(s):
        return False
    if q.about_user or not q.subject_is_name:
        return True
    name = q.subject.lower()
    second = addressed(s.text)
    if s.speaker is None:
        return bool(re.search(rf"\b{re.escape(name)}", s.memory_text or s.text, re.I))
    if same_person(s.speaker, name):
        return not second
    return second or names(s.text, name)


def about_someone_else(s: Sentence) -> bool:
    """A note sentence whose subject is another person or thing: "My sister Meera lives in
    Bristol", "Biscuit the cat died" (no "I", "me" or "we" anywhere in it)."""
    if s.speaker is not None:
        return False
    return bool(_LEADING_OTHER.match(s.text)) and not _FIRST_PERSON.search(s.text)


def _asked_in(text: str) -> str:
    return " ".join(x for x in re.split(r"(?<=[.!?])\s+", text) if x.rstrip().endswith("?"))


def in_reply(s: Sentence) -> Sentence:
    """The sentence read together with what the turn it replies to asked: a reply answers a
    question, while a comment on a statement ("That's a gorgeous song!") does not tell it."""
    asked = _asked_in(s.context)
    return replace(s, text=f"{s.text} {asked}") if asked else s


def reply_score(q: Question, s: Sentence) -> float:
    """A chat turn is read with the turn it replies to: the question's words are often split
    between them ("How did they handle the accident?" / "They were scared but OK."), and a
    turn that answers a question like this one is where its answer is."""
    if s.speaker is None:
        return 0.0
    score = 0.6 * coverage(q, in_reply(s)) + 0.3 * coverage(q, s, whole_memory=True)
    asked = _asked_in(s.context)
    if asked:
        score += 0.3 * coverage(q, replace(s, text=asked))
    if len(s.text.split()) <= 3:
        score -= 0.3  # "Thanks, Mel!": the turn's answer is in its other sentences
    return score
