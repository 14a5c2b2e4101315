"""Dataset synthesis: time-aware, forgetting-aware, split by memory, robust to hand edits."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from finetune import DatasetError, MemoryRecord, ProfileRecord
from finetune.data import answer_keys, read_jsonl, second_person, synthesize, write_jsonl
from tests.finetune.tiny_model import sample_memories


def test_superseded_fact_is_taught_only_as_history() -> None:
    ex = synthesize(sample_memories())
    old = [e for e in ex if e.memory_id == "m1"]
    assert old and all(e.kind == "history" for e in old)
    assert all("changed on 15 March 2023" in e.answer for e in old)
    # "Where do I live?" is answered only by the newer memory
    live = [e for e in ex if e.question == "Where do I live?"]
    assert live and {e.memory_id for e in live} == {"m3"}
    assert all("Lisbon" in e.answer for e in live)


def test_forgotten_memory_never_enters_the_dataset() -> None:
    kept = [m for m in sample_memories() if m.id != "m4"]  # the store dropped m4
    ex = synthesize(kept)
    assert not any("Pixel" in e.answer or e.memory_id == "m4" for e in ex)


def test_splits_hold_out_paraphrases_and_whole_memories() -> None:
    mems = [
        MemoryRecord(
            f"n{i}", f"I visited Town{i} with my friend Name{i}.", datetime(2020, 1, i + 1)
        )
        for i in range(20)
    ]
    ex = synthesize(mems, [ProfileRecord("email", "a@b.example")])
    splits = {e.split for e in ex}
    assert {"train", "heldout_paraphrase", "heldout_memory", "abstain_eval"} <= splits
    held_mem = {e.memory_id for e in ex if e.split == "heldout_memory"}
    trained = {e.memory_id for e in ex if e.split == "train" and e.memory_id}
    assert held_mem and not held_mem & trained
    for mid in {e.memory_id for e in ex if e.split == "heldout_paraphrase" and e.memory_id}:
        q_held = {e.question for e in ex if e.memory_id == mid and e.split == "heldout_paraphrase"}
        q_train = {e.question for e in ex if e.memory_id == mid and e.split == "train"}
        assert q_train and not q_held & q_train
    assert any(e.kind == "profile" and "a@b.example" in e.answer for e in ex)


def test_abstention_skips_topics_the_user_mentioned() -> None:
    ex = synthesize(sample_memories())
    abstain = [e for e in ex if e.kind == "abstain"]
    assert abstain and all("no memory" in e.answer for e in abstain)
    assert not any("horse" in e.question for e in abstain)  # pet topic is covered by Pixel


def test_second_person_and_keys() -> None:
    assert (
        second_person("I moved to Porto. My cat likes me.")
        == "You moved to Porto. Your cat likes you."
    )
    assert "Nordlicht" in answer_keys("I started working at Nordlicht Logistics.")


def test_no_memories_is_a_clear_error() -> None:
    with pytest.raises(DatasetError, match="no memories"):
        synthesize([], [])


def test_edited_dataset_with_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = write_jsonl(synthesize(sample_memories()), tmp_path / "d.jsonl")
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:-5]  # a hand edit that broke the JSON
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"line 3 is not valid JSON"):
        read_jsonl(path)


def test_edited_dataset_roundtrips_and_checks_fields(tmp_path: Path) -> None:
    ex = synthesize(sample_memories())
    path = write_jsonl(ex, tmp_path / "d.jsonl")
    assert read_jsonl(path) == ex
    path.write_text('{"question": "", "answer": "x"}\n')
    with pytest.raises(DatasetError, match="non-empty"):
        read_jsonl(path)
    path.write_text('{"question": "q", "answer": "a", "split": "bogus"}\n')
    with pytest.raises(DatasetError, match="unknown split"):
        read_jsonl(path)


def test_superseded_fact_gets_past_tense_questions_only() -> None:
    ex = synthesize(sample_memories())
    before = [e for e in ex if e.question == "Where did I live before?"]
    assert (
        before
        and {e.memory_id for e in before} == {"m1"}
        and all(e.kind == "history" for e in before)
    )
    assert "Hamburg" in before[0].answer and "changed on" in before[0].answer
    present = {"Where do I live?", "What is my address?", "Which city is my home now?"}
    assert not any(e.question in present for e in ex if e.memory_id == "m1")


def test_questions_name_the_thing_the_memory_is_about() -> None:
    from finetune.questions import questions_for

    qs = questions_for("We adopted a grey cat and named her Pixel.", "4 April 2020")
    assert {"What is my cat's name?", "What do you remember about Pixel?"} <= set(qs)
    qs = questions_for(
        "Dentist Dr. Okafor says I need a crown on the lower left molar.", "8 November 2022"
    )
    assert {"What did the dentist say?", "What do you remember about Dr. Okafor?"} <= set(qs)
    assert not any(
        "Tuesday" in q for q in questions_for("Cello lessons every Tuesday evening.", "1 May 2020")
    )


def test_abstention_bank_skips_mentioned_words_and_holds_out_all_phrasings() -> None:
    mems = sample_memories() + [MemoryRecord("m9", "My shoe size is 44.", datetime(2021, 1, 1))]
    ex = synthesize(mems)
    abstain = [e for e in ex if e.kind == "abstain"]
    assert not any("shoe" in e.question for e in abstain)
    held = {e.id.split(":")[1] for e in abstain if e.split == "abstain_eval"}
    trained = {e.id.split(":")[1] for e in abstain if e.split == "train"}
    assert held and trained and not held & trained
    assert len([e for e in abstain if e.split == "train"]) > len(trained)  # several phrasings each


def test_profile_birthday_is_spoken_like_a_person_says_it() -> None:
    ex = synthesize([], [ProfileRecord("bday", "1991-04-17")])
    assert all("17 April 1991" in e.answer for e in ex if e.kind == "profile")
    assert (
        second_person("I was born in Bremen. It was sunny.")
        == "You were born in Bremen. It was sunny."
    )


def test_an_email_address_is_not_a_home() -> None:
    from finetune.questions import topics_of

    assert "home" not in topics_of(
        "My new email is jonas@example.org; the old address forwards for a year."
    )
    assert "email" in topics_of(
        "My new email is jonas@example.org; the old address forwards for a year."
    )


def test_a_question_several_memories_answer_is_taught_once_naming_them() -> None:
    from finetune.questions import questions_for

    mems = [
        MemoryRecord(
            "a", "Ran the Berlin Marathon in 3:58:12, my first marathon.", datetime(2021, 9, 26)
        ),
        MemoryRecord("b", "Started bouldering at Berta Block twice a week.", datetime(2020, 8, 20)),
        MemoryRecord(
            "c", "Ran the Lisbon Marathon in 3:49:40, a personal best.", datetime(2025, 10, 12)
        ),
    ]
    train = [e for e in synthesize(mems, heldout_memory_fraction=0.0) if e.split == "train"]
    answers: dict[str, set[str]] = {}
    for e in train:
        answers.setdefault(e.question, set()).add(e.answer)
    assert all(len(a) == 1 for a in answers.values())  # never one question with two answers
    (sport,) = answers["What sport do I do?"]
    assert sport.index("Lisbon") < sport.index("Berlin") < sport.index("Berta")  # newest first
    assert "Tell me about my marathon." in answers  # a sport's noun, never its verb ("my ran")
    assert not any(
        "my ran" in q for q in questions_for("Ran the Berlin Marathon.", "26 September 2021")
    )
