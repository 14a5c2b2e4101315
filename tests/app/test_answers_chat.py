"""Answers from conversations: a turn is read with the turn it replies to, a fact told by the
other speaker is not the subject's, and a turn found by its words alone still counts.

Real store (SQLite, chromadb, MiniLM); the default `extract` strategy needs no model.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from app.answer import dialogue, sentences
from app.answer.question import analyze
from memory import relevance
from memory.types import SearchHit
from tests.app._answers_support import make_runtime

NOW = datetime(2023, 9, 1, 12, tzinfo=UTC)
AT = "2023-08-20T15:00:00+00:00"
LATER = "2023-08-27T15:00:00+00:00"

SESSION_1 = [
    ("Maria", "Hey Ana! Our road trip was wild. My son had an accident on the way."),
    ("Ana", "Oh no, I'm so sorry! How did the kids handle the accident?"),
    ("Maria", "Thanks! They were scared but we reassured them, they're tough kids."),
    ("Ana", "I ran a charity race for mental health last Saturday."),
    ("Maria", "That charity race sounds great, Ana!"),
    ("Ana", "Thanks, Maria! After the race I realised that self-care is really important."),
]
SESSION_2 = [
    ("Maria", "I'm after Marley flooring, which is what dance studios usually use."),
    ("Ana", "Nice. We even had a picnic by the lake last week!"),
    ("Maria", "Took a short trip last week to Rome to clear my mind a little."),
    ("Ana", "The store's doing great these days!"),
    ("Maria", "Your store looks great, I remember it!"),
]


@pytest.fixture(scope="module")
def chat(tmp_path_factory, embedder):
    home = tmp_path_factory.mktemp("chat-answers")
    rt = make_runtime(home / "home", embedder, inbox_use_model=False)
    rows = [
        {"text": t, "speaker": who, "at": AT, "session": "s1", "kind": "chat"}
        for who, t in SESSION_1
    ] + [
        {"text": t, "speaker": who, "at": LATER, "session": "s2", "kind": "chat"}
        for who, t in SESSION_2
    ]
    src = home / "turns.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    report = rt.import_paths([src])
    assert len(report.memory_ids) == len(rows)
    yield rt
    rt.close()


def ask(rt, question: str):
    return rt.ask_stream(question, now=NOW, strategy="extract").result()


def cited_text(rt, answer) -> str:
    assert answer.evidence, answer
    span = answer.evidence[0]
    mem = rt.memory.get(span.id)
    assert mem is not None
    return mem.text


def test_previous_turns_stay_inside_their_session(chat):
    by_text = {m.text: m for m in chat.memory.iter_memories()}
    reply = by_text[SESSION_1[2][1]]
    first_of_s2 = by_text[SESSION_2[0][1]]
    first_of_s1 = by_text[SESSION_1[0][1]]
    found = chat.memory.previous_turns([reply.id, first_of_s2.id, first_of_s1.id])
    assert found[reply.id].text == SESSION_1[1][1]  # the question it answers
    assert first_of_s2.id not in found  # the last turn of session 1 is another conversation
    assert first_of_s1.id not in found


def test_a_reply_answers_the_question_asked_just_before_it(chat):
    answer = ask(chat, "How did Maria's kids handle the accident?")
    assert not answer.abstained
    assert "scared" in answer.answer.lower()
    assert cited_text(chat, answer) == SESSION_1[2][1]


def test_what_the_other_speaker_told_is_not_the_subjects(chat):
    right = ask(chat, "What did Ana realise after the charity race?")
    assert not right.abstained and "self-care" in right.answer.lower()
    # Maria only commented on Ana's race: the question about Maria has no answer.
    wrong = ask(chat, "What did Maria realise after the charity race?")
    assert wrong.abstained and wrong.evidence == []


def test_a_description_from_a_turn_ends_with_its_clause(chat):
    answer = ask(chat, "What kind of flooring is Maria looking for?")
    assert not answer.abstained
    assert "Marley flooring" in answer.answer
    assert "which" not in answer.answer and "studios" not in answer.answer


def test_a_turn_found_by_its_words_alone_is_evidence():
    at = datetime(2023, 8, 27, tzinfo=UTC)

    def hit(text: str, similarity: float | None, speaker: str | None = "Ana") -> SearchHit:
        return SearchHit(
            id=text[:8],
            text=text,
            score=0.1,
            kind="chat",
            created_at=at,
            at=at,
            similarity=similarity,
            keyword_match=similarity is None,
            speaker=speaker,
        )

    question = "When did Ana have a picnic?"
    keyword_only = hit("We even had a picnic by the lake last week!", None)
    unrelated = hit("The weather was lovely all week.", None)
    weak_turn = hit("Nice. A picnic is always fun!", 0.15)
    weak_note = hit("Nice. A picnic is always fun!", 0.15, speaker=None)
    judged = relevance.judge(question, [keyword_only, unrelated, weak_turn, weak_note], {})
    assert keyword_only in judged.relevant and weak_turn in judged.relevant
    assert unrelated not in judged.relevant
    assert weak_note not in judged.relevant  # a note is embedded bare: it needs more support


def test_the_words_that_date_a_question_are_not_its_focus():
    q = analyze("When did Ana go camping in June?", NOW, frozenset({"ana", "maria"}))
    assert q.focus == ("camping",) and q.scope.start is not None


def test_synonyms_are_found_for_stemmed_question_words():
    from memory.relevance import stem

    assert sentences.same_word(stem("address"), stem("street"))
    assert sentences.same_word(stem("symbolize"), stem("stands"))
    assert not sentences.same_word(stem("stands"), stem("symbolize"))  # from the question's word


def test_the_noun_naming_the_answers_kind_anchors_but_need_not_be_said():
    q = analyze("Which cities did Ana visit in Japan?", NOW, frozenset({"ana", "maria"}))
    assert q.kind_noun == "cities" and "cities" not in q.focus


def test_a_why_question_is_answered_by_the_reason():
    assert dialogue.addressed("Your store looks great, I remember it!")
    assert dialogue.addressed("That race sounds great, Mel!")
    assert not dialogue.addressed("I love my new shoes.")
    said = dialogue.own_statements("Thanks, Mel! What got you into running? I ran a race.")
    assert said == "I ran a race."
    assert dialogue.contentless("Thanks, Caroline!") and dialogue.contentless("Hey Jon!")
    assert not dialogue.contentless("Sweden.") and not dialogue.contentless("Wow, I made it!")


def test_the_reason_of_a_trip(chat):
    answer = ask(chat, "What did Maria take a trip to Rome for?")
    assert not answer.abstained
    assert answer.answer.lower().startswith("to clear my mind")


def test_a_compliment_about_the_listeners_thing_is_not_the_speakers(chat):
    assert "doing great" in ask(chat, "How is Ana's store doing?").answer
    assert ask(chat, "How is Maria's store doing?").abstained


def test_a_date_outside_the_asked_month_or_a_plan_is_not_when_it_happened(embedder, tmp_path):
    rt = make_runtime(tmp_path / "home", embedder, inbox_use_model=False)
    try:
        for text, at in (
            ("We're thinking about going camping next month.", datetime(2023, 5, 25, tzinfo=UTC)),
            (
                "I took my family camping in the mountains last week.",
                datetime(2023, 6, 27, tzinfo=UTC),
            ),
            ("Our camping trip last year was the best.", datetime(2023, 7, 20, tzinfo=UTC)),
        ):
            rt.remember(text, at=at)
        answer = ask(rt, "When did I go camping in June?")
        assert not answer.abstained
        assert "27 June 2023" in answer.answer and "2022" not in answer.answer
    finally:
        rt.close()
