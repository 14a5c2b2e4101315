"""Query understanding: content terms, named speakers, time windows (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memory.query import analyze, content_terms, match_speakers, semantic_text, time_window

NOW = datetime(2024, 10, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "query, terms",
    [
        ("Where do I live now?", ["live"]),
        ("What is my current address?", ["address"]),
        ("Wo wohne ich jetzt?", ["wohne"]),
        ("Où est-ce que j'habite maintenant ?", ["habite"]),
        ("¿Dónde vivo ahora?", ["vivo"]),
        ("Qual é o meu email atual?", ["email"]),
    ],
)
def test_fillers_never_reach_keywords(query, terms):
    assert content_terms(query) == terms


def test_speaker_names_match_whole_or_first_name():
    speakers = ["Ana Lima", "Ben", "Al"]
    assert match_speakers("What did ana say about the ferry?", speakers) == ["Ana Lima"]
    assert match_speakers("Ben's new job", speakers) == ["Ben"]
    assert match_speakers("Is it all right?", speakers) == []  # "Al" only as a whole word
    plan = analyze("When did Ana Lima adopt the dog?", speakers, NOW)
    assert plan.speakers == ["Ana Lima"] and "ana" not in plan.terms and "dog" in plan.terms


def test_semantic_text_drops_the_named_speakers():
    speakers = ["Ana Lima", "Ben"]
    plan = analyze("What does Ana think about Ben's new job?", speakers, NOW)
    assert plan.semantic == "What does think about new job?"
    assert analyze("Where is the ferry pier?", speakers, NOW).semantic is None
    # Nothing but the name and fillers left: the query itself is embedded.
    assert semantic_text("What did Ana say?", ["Ana Lima"]) == "What did Ana say?"


@pytest.mark.parametrize(
    "query, start, end",
    [
        ("What did I do in May 2023?", "2023-05-01", "2023-06-01"),
        ("Trips in 2022", "2022-01-01", "2023-01-01"),
        ("What happened last summer?", "2024-06-01", "2024-09-01"),
        ("Books I read last winter", "2023-12-01", "2024-03-01"),
        ("Where did we eat last month?", "2024-09-01", "2024-10-01"),
        ("december, 2021 plans", "2021-12-01", "2022-01-01"),
    ],
)
def test_time_windows(query, start, end):
    w = time_window(query, NOW)
    assert w is not None
    assert w.start.date().isoformat() == start and w.end.date().isoformat() == end


def test_before_an_event_is_an_open_window():
    plan = analyze("Where did I work before I moved to Lisbon?", [], NOW)
    assert plan.window is None and plan.event_relation == "before" and "moved" in plan.event_phrase
    assert time_window("What is my phone number?", NOW) is None
