"""Profile proposals: extraction patterns, the review inbox, and `memex inbox`."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.inbox import propose
from memory.extract import extract, parse_model_reply
from memory.inbox import Inbox
from tests.app._answers_support import load_persona, make_runtime, persona


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "My name is Ada Lovelace.",
            {"name": "Ada Lovelace", "given-name": "Ada", "family-name": "Lovelace"},
        ),
        ("I was born on 10 December 1815 in London.", {"bday": "1815-12-10"}),
        ("My birthday is March 3rd, 1985", {"bday": "1985-03-03"}),
        ("My new mobile number is +44 7700 900123.", {"tel": "+44 7700 900123"}),
        ("My email address is ada@example.org.", {"email": "ada@example.org"}),
        (
            "I live at 123 Main Street, Springfield, IL 62704.",
            {
                "street-address": "123 Main Street",
                "address-level2": "Springfield",
                "address-level1": "IL",
                "postal-code": "62704",
            },
        ),
        (
            "We moved! Our address is Rua das Flores 45, 1200-195 Lisboa, Portugal.",
            {
                "street-address": "Rua das Flores 45",
                "postal-code": "1200-195",
                "address-level2": "Lisboa",
                "country-name": "Portugal",
            },
        ),
        (
            "I work for Acme Corp as a software engineer.",
            {"organization": "Acme Corp", "organization-title": "software engineer"},
        ),
        (
            "I was promoted to staff engineer at Acme Corp.",
            {"organization-title": "staff engineer", "organization": "Acme Corp"},
        ),
        # not the user's own values
        ("My sister's phone number is 555 123 4567.", {}),
        ("Sofia's email is sofia@example.org.", {}),
        ("Today I went to the park with Lena.", {}),
    ],
)
def test_extraction_patterns(text, expected):
    assert {e.key: e.value for e in extract(text)} == expected


def test_model_values_must_occur_in_the_note():
    note = "Call me Ada; reach me on the new number any time."
    reply = "name: Ada\nemail: ada@invented.example\ntel: none\nfavourite: tea"
    got = {
        e.key: e.value for e in parse_model_reply(reply, note, frozenset({"name", "email", "tel"}))
    }
    assert got == {"name": "Ada"}


@pytest.fixture
def rt(memex_home, embedder):
    r = make_runtime(memex_home, embedder, inbox_use_model=False)
    yield r
    r.close()


def test_persona_values_are_proposed_and_never_stale(rt):
    load_persona(rt)
    items = Inbox(rt.memory).list("pending")
    pending = {(i.key, i.value) for i in items}
    profile = persona("profile.json")
    values = {v for _, v in pending}
    found = [v for v in profile["current"].values() if v in values]
    assert len(found) / len(profile["current"]) >= 0.9, set(profile["current"].values()) - values
    assert not [v for v in profile["stale_values"] if v in values]
    for item in items:  # never from a superseded note
        assert rt.memory.get(item.source_memory).superseded_by is None
    assert rt.memory.profile() == []  # nothing enters the profile without accept


def test_newer_memory_proposes_a_change_and_supersedes_the_old_value(rt):
    old, _ = rt.remember("My phone number is +49 151 2345 6789.", at=datetime(2016, 1, 1))
    inbox = Inbox(rt.memory)
    [first] = inbox.list()
    assert (first.key, first.value, first.source_memory) == ("tel", "+49 151 2345 6789", old.id)
    inbox.accept(first.id)
    assert {f.key: f.value for f in rt.memory.profile()} == {"tel": "+49 151 2345 6789"}

    new, _ = rt.remember("My new phone number is +49 160 9876 5432.", at=datetime(2022, 1, 10))
    [change] = inbox.list()
    assert change.value == "+49 160 9876 5432" and change.previous_value == "+49 151 2345 6789"
    assert change.source_memory == new.id
    assert rt.memory.get(old.id).superseded_by == new.id
    # the profile keeps the accepted value until the user accepts the change
    assert {f.key: f.value for f in rt.memory.profile()} == {"tel": "+49 151 2345 6789"}
    inbox.accept(change.id)
    assert {f.key: f.value for f in rt.memory.profile()} == {"tel": "+49 160 9876 5432"}


def test_pending_value_is_superseded_by_a_newer_memory(rt):
    rt.remember("My email address is old@example.org.", at=datetime(2016, 1, 1))
    rt.remember("My new email is new@example.org.", at=datetime(2024, 1, 1))
    inbox = Inbox(rt.memory)
    assert [(i.value, i.status) for i in inbox.list(None)] == [
        ("old@example.org", "superseded"),
        ("new@example.org", "pending"),
    ]
    # an old note imported later does not replace the newer pending value
    rt.remember("My email address is older@example.org.", at=datetime(2010, 1, 1))
    assert [i.value for i in inbox.list()] == ["new@example.org"]


def test_reject_is_remembered_and_forget_removes_proposals(rt):
    mem, _ = rt.remember("My email address is ada@example.org.")
    inbox = Inbox(rt.memory)
    [item] = inbox.list()
    inbox.reject(item.id)
    propose(rt.memory, [mem])
    assert inbox.list() == [] and inbox.list("rejected")[0].value == "ada@example.org"
    rt.forget([mem.id])
    assert inbox.list(None) == []


def test_model_proposals_are_grounded(rt):
    calls = []

    def fake_generate(prompt: str) -> str:
        calls.append(prompt)
        return "name: Ziggy\nemail: invented@example.org"

    mem, _ = rt.memory.remember(
        "Everyone knows me as Ziggy; my name on the team roster says so too."
    )
    created = propose(rt.memory, [mem], fake_generate)
    assert calls and [(i.key, i.value, i.method) for i in created] == [("name", "Ziggy", "model")]


def test_real_model_is_asked_only_when_patterns_fail(memex_home, embedder):
    rt = make_runtime(memex_home, embedder, inbox_use_model=True, max_answer_tokens=32)
    try:
        rt.remember("My email address is ada@example.org.")
        assert rt._backend is None  # patterns sufficed: no model load
        rt.remember("I live in a small village and my phone is always off.")
        assert rt._backend is not None  # asked, and whatever it says must be grounded in the note
        for item in Inbox(rt.memory).list():
            assert (
                item.value.lower()
                in "my email address is ada@example.org. i live in a small village and my phone is "
                "always off."
            )
    finally:
        rt.close()


# -- the command ----------------------------------------------------------------------
from tests.cli_support import run  # noqa: E402


def test_inbox_command(capsys, monkeypatch, embedder):
    monkeypatch.setattr("memory.store.Embedder", lambda *a, **k: embedder)
    monkeypatch.setenv("MEMEX_INBOX_USE_MODEL", "false")
    run(
        capsys,
        "remember",
        "My name is Ada Lovelace. My email address is ada@example.org.",
        "--json",
    )
    code, out = run(capsys, "inbox", "list", "--json")
    assert code == 0
    items = {i["key"]: i for i in out["items"]}
    assert set(items) == {"name", "given-name", "family-name", "email"}
    for i in out["items"]:
        assert {"id", "key", "value", "source_memory", "confidence", "status"} <= i.keys() and i[
            "status"
        ] == "pending"

    code, out = run(capsys, "inbox", "accept", str(items["email"]["id"]), "--json")
    assert code == 0 and out["items"][0]["status"] == "accepted"
    code, out = run(capsys, "inbox", "edit", str(items["name"]["id"]), "Augusta Ada King", "--json")
    assert code == 0 and out["items"][0]["value"] == "Augusta Ada King"
    code, out = run(capsys, "inbox", "reject", str(items["given-name"]["id"]), "--json")
    assert code == 0 and out["items"][0]["status"] == "rejected"
    code, prof = run(capsys, "profile", "show", "--json")
    assert {f["key"]: f["value"] for f in prof["fields"]} == {
        "email": "ada@example.org",
        "name": "Augusta Ada King",
    }

    code, out = run(capsys, "inbox", "accept", "9999", "--json")
    assert code != 0 and out["kind"] == "not_found"
    code, out = run(capsys, "inbox", "edit", str(items["family-name"]["id"]), "   ", "--json")
    assert code != 0 and out["kind"] == "bad_input"
    code, out = run(capsys, "inbox", "reject", str(items["email"]["id"]), "--json")
    assert code != 0 and "already accepted" in out["error"]
