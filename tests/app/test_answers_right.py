"""Answers that are right: grounded spans, dated quotes, abstention from evidence, now vs then.

The default `extract` strategy runs on a real store (SQLite, chromadb, MiniLM) without a
model; the `constrained` and `generate` strategies run on real llama.cpp with the bundled
model.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.answer import ABSTAIN_ANSWER, prepare_answer
from app.answer.compose import Generate, compose_extractive, supported
from app.answer.question import analyze
from inference.base import GenerationParams
from tests.app._answers_support import make_runtime

PERSONA_V2 = Path(__file__).resolve().parents[1] / "fixtures" / "persona_v2"
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def rt(tmp_path_factory, embedder):
    runtime = make_runtime(tmp_path_factory.mktemp("answers-home"), embedder, inbox_use_model=False)
    report = runtime.import_paths([PERSONA_V2 / "notes.jsonl"])
    assert len(report.memory_ids) == 52
    yield runtime
    runtime.close()


def ask(rt, question: str, strategy: str = "extract"):
    return rt.ask_stream(question, now=NOW, strategy=strategy).result()


def full_text(rt, memory_id: str) -> str:
    mem = rt.memory.get(memory_id)
    assert mem is not None
    return mem.text


# -- question analysis ---------------------------------------------------------------


@pytest.mark.parametrize(
    "question, kind",
    [
        ("When did I adopt the cat?", "date"),
        ("Where do I live now?", "place"),
        ("Who is my dentist?", "person"),
        ("How many guests came?", "number"),
        ("How long was the honeymoon?", "duration"),
        ("Am I still vegetarian?", "yesno"),
        ("Did we see the northern lights?", "yesno"),
        ("What are my hobbies?", "list"),
        ("Which cities did I visit in Japan?", "list"),
        ("What is my blood type?", "description"),
    ],
)
def test_answer_types(question, kind):
    assert analyze(question, NOW).answer_type == kind


def test_subjects_and_time_scopes():
    q = analyze("Where does my sister Meera live?", NOW)
    assert (q.subject, q.subject_is_name) == ("Meera", True) and "sister" not in q.focus
    q = analyze("What did Caroline research?", NOW, frozenset({"caroline", "melanie"}))
    assert q.subject == "Caroline" and q.subject_is_name
    assert analyze("Who is my manager?", NOW).subject == "manager"
    assert analyze("Where do I live now?", NOW).scope.now
    q = analyze("Where did I work before Northwind Health?", NOW)
    assert q.scope.before == "Northwind Health" and "northwind" not in q.focus
    q = analyze("What was my phone number in 2020?", NOW)
    assert (q.scope.start.isoformat(), q.scope.end.isoformat()) == ("2020-01-01", "2020-12-31")
    q = analyze("What did I do last summer?", NOW)
    assert (q.scope.start.isoformat(), q.scope.end.isoformat()) == ("2025-06-01", "2025-08-31")


# -- grounded, dated answers ----------------------------------------------------------


@pytest.mark.parametrize(
    "question, expected",
    [
        ("When did we adopt Biscuit?", "1 June 2019"),  # "yesterday" in a note of 2 June 2019
        ("When did Daniel propose?", "10 December 2022"),  # "last night"
        ("When did we get Pepper?", "7 October 2023"),  # "last Saturday"
        ("How long was our honeymoon?", "ten days"),
        ("Where did Tom move for his job?", "Glasgow"),
        ("Who did Tom marry?", "Aisha"),
        ("How many guests came to our wedding?", "80"),
        ("What is my blood type?", "O negative"),
    ],
)
def test_answer_is_a_span_of_the_cited_memory(rt, question, expected):
    answer = ask(rt, question)
    assert expected.lower() in answer.answer.lower() and len(answer.answer.split()) <= 30
    assert answer.evidence and answer.citations[0].id == answer.evidence[0].id
    for span in answer.evidence:
        text = full_text(rt, span.id)
        assert 0 <= span.start < span.end <= len(text)
    span = answer.evidence[0]
    quoted = full_text(rt, span.id)[span.start : span.end]
    # The fact comes from the memory: the span itself, or the date it resolves to.
    assert expected.lower() in quoted.lower() or answer.strategy == "extract" and quoted.strip()
    assert answer.quote.startswith("On ") and "you wrote" in answer.quote


def test_durations_are_computed_not_generated(rt, embedder, tmp_path):
    other = make_runtime(tmp_path / "berlin", embedder, inbox_use_model=False)
    try:
        other.remember(
            "I lived in Berlin from 2019 to 2024, in Kreuzberg.",
            at=datetime(2024, 5, 1, tzinfo=UTC),
        )
        answer = other.ask_stream("How long did I live in Berlin?", now=NOW).result()
        assert answer.answer == "5 years"
    finally:
        other.close()


def test_now_uses_the_newest_value_and_then_the_value_valid_then(rt):
    assert "Quanta Bio" in ask(rt, "Where do I work now?").answer
    assert "Halden Analytics" in ask(rt, "Where did I work before Northwind Health?").answer
    assert "Manchester" in ask(rt, "Where did I live before Leeds?").answer
    assert "07700 900123" in ask(rt, "What was my phone number in 2020?").answer


def test_issue_example_lisbon_and_berlin(embedder, tmp_path):
    other = make_runtime(tmp_path / "lisbon", embedder, inbox_use_model=False)
    try:
        other.remember(
            "I lived in Berlin from 2019 to 2024, in Kreuzberg.",
            at=datetime(2023, 1, 10, tzinfo=UTC),
        )
        other.remember(
            "I moved to Lisbon in March 2024, my new flat is at Rua da Prata 80.",
            at=datetime(2024, 3, 20, tzinfo=UTC),
        )
        other.remember(
            "My dentist is Dr. Costa, phone +351 21 555 0199.", at=datetime(2024, 5, 2, tzinfo=UTC)
        )
        live = other.ask_stream("Where do I live?", now=NOW).result()
        before = other.ask_stream("Where did I live before Lisbon?", now=NOW).result()
        phone = other.ask_stream("What is my dentist's phone number?", now=NOW).result()
        assert "Lisbon" in live.answer or "Rua da Prata" in live.answer
        assert "Berlin" in before.answer and "Lisbon" not in before.answer
        assert "555 0199" in phone.answer
    finally:
        other.close()


# -- abstention from evidence ----------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "When did I go skydiving?",  # never mentioned
        "What is my horse called?",
        "What is Meera's phone number?",  # the user's phone is remembered, not Meera's
        "Who is Tom's manager?",  # the user's manager is remembered, not Tom's
        "Where does my brother Arjun work?",
    ],
)
def test_never_mentioned_or_other_person_abstains(rt, question):
    answer = ask(rt, question)
    assert answer.abstained and answer.answer == ABSTAIN_ANSWER
    assert answer.citations == [] and answer.evidence == []


def test_a_chat_turn_about_the_other_speaker_does_not_answer(embedder, tmp_path):
    other = make_runtime(tmp_path / "chat", embedder, inbox_use_model=False)
    try:
        turns = tmp_path / "turns.jsonl"
        at = "2023-05-08T13:56:00+00:00"
        rows = [
            {
                "text": "I ran a charity race for mental health last Saturday.",
                "speaker": "Maria",
                "at": at,
            },
            {"text": "That's amazing, congrats on your race!", "speaker": "Ana", "at": at},
            {"text": "I realised self-care is really important.", "speaker": "Maria", "at": at},
        ]
        turns.write_text(
            "\n".join(json.dumps({**r, "kind": "chat", "session": "s1"}) for r in rows) + "\n"
        )
        other.import_paths([turns])
        right = other.ask_stream("When did Maria run a charity race?", now=NOW).result()
        assert "6 May 2023" in right.answer and not right.abstained
        wrong = other.ask_stream("When did Ana run a charity race?", now=NOW).result()
        assert wrong.abstained
    finally:
        other.close()


# -- fallback and verification ---------------------------------------------------------


def test_unsupported_generated_answer_is_replaced_by_a_dated_quote(rt):
    prepared = prepare_answer(
        rt.memory, "When did we adopt Biscuit?", tokenizer=None, answer_tokens=16, now=NOW
    )

    class Inventing:  # a model that invents: what a 135M model does with packed memories
        def stream(self, messages, params):
            yield "You adopted a parrot in Madrid."

    answer = (
        Generate("generate", needs_model=True)
        .stream(prepared, lambda: Inventing(), GenerationParams())
        .result()
    )
    assert answer.answer.startswith("On 2 June 2019 you wrote:") and "Biscuit" in answer.answer
    assert answer.evidence and "parrot" not in answer.answer
    assert supported("You adopted a parrot in Madrid.", prepared) is None
    assert supported("On 1 June 2019.", prepared) is not None


def test_low_scoring_candidates_fall_back_to_the_quote(rt):
    prepared = prepare_answer(
        rt.memory, "What did we see in Iceland?", tokenizer=None, answer_tokens=16, now=NOW
    )
    prepared.candidates = []  # nothing clears the bar
    draft = compose_extractive(prepared)
    assert draft.answer.startswith("On ") and "Iceland" in draft.answer and draft.evidence


# -- the model as chooser and writer (real llama.cpp) -------------------------------------


@pytest.mark.slow
def test_constrained_and_generate_strategies_on_the_bundled_model(rt):
    prepared = prepare_answer(
        rt.memory, "Who did Tom marry?", tokenizer=None, answer_tokens=16, now=NOW
    )
    options = {c.text.strip().rstrip(".,;:").lower() for c in prepared.candidates}
    constrained = ask(rt, "Who did Tom marry?", "constrained")
    assert constrained.answer.lower() in options and constrained.evidence
    generated = ask(rt, "Who did Tom marry?", "generate")
    assert generated.answer and generated.evidence  # verified, or replaced by the quote
    assert generated.strategy == "generate"
    if not generated.answer.startswith("On "):
        assert supported(generated.answer, prepared) is not None
