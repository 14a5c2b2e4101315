"""The chat session (`memex chat`): context across turns, slash commands, saving chats."""

from __future__ import annotations

import io
import json

import pytest

from app.cli import main
from tests.app._answers_support import make_runtime


@pytest.fixture
def rt(memex_home, embedder):
    r = make_runtime(memex_home, embedder, inbox_use_model=False, max_answer_tokens=24)
    r.remember("My cat is a grey tabby called Pixel.", source="diary")
    yield r
    r.close()


def test_turns_keep_the_conversation_in_context(rt):
    session = rt.chat_session()
    stream = session.send("What is my cat called?")
    pieces = list(stream)
    first = session.record(stream)
    assert pieces and first.answer and [c.text for c in first.citations] == ["My cat is a grey tabby called Pixel."]
    second = session.send("What colour is she?")
    roles = [m.role for m in second.prepared.messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert second.prepared.messages[1].content == "What is my cat called?"
    assert second.prepared.messages[2].content == first.answer
    session.record(second)
    assert len(session.turns) == 2 and session.close() is None  # save_chats is off by default
    assert rt.memory.count() == 1


def test_slash_commands(rt):
    session = rt.chat_session()
    res = session.command("/remember My bike is a green Gazelle.")
    mem_id = res.text.split("[")[1].split("]")[0]
    assert rt.memory.get(mem_id).text == "My bike is a green Gazelle."
    assert "Already remembered" in session.command("/remember My bike is a green Gazelle.").text
    assert session.command("/sources").text == "The last answer cited no memories."
    session.record(session.send("Which bike do I have?"))
    assert mem_id in session.command("/sources").text
    assert session.command(f"/forget {mem_id}").text == "Forgot 1 memory."
    assert rt.memory.get(mem_id) is None
    assert "No memory" in session.command("/forget nosuchid").text or "nosuchid" in session.command("/forget nosuchid").text
    assert session.command("/remember").text.startswith("Usage")
    assert "Unknown command" in session.command("/dance").text
    assert session.command("/quit").quit


def test_save_chats_stores_the_conversation(memex_home, embedder):
    r = make_runtime(memex_home, embedder, inbox_use_model=False, max_answer_tokens=16, save_chats=True)
    try:
        r.remember("My cat is a grey tabby called Pixel.")
        session = r.chat_session()
        session.record(session.send("What is my cat called?"))
        saved = session.close()
        mem = r.memory.get(saved)
        assert mem.kind == "chat" and mem.text.startswith("Me: What is my cat called?\nmemex: ")
        assert session.close() == saved  # saved once
    finally:
        r.close()


def test_chat_command_reads_stdin(capsys, monkeypatch, embedder):
    monkeypatch.setattr("memory.store.Embedder", lambda *a, **k: embedder)
    monkeypatch.setenv("MEMEX_MAX_ANSWER_TOKENS", "16")
    monkeypatch.setenv("MEMEX_INBOX_USE_MODEL", "false")
    monkeypatch.setattr("sys.stdin", io.StringIO(
        "/remember My cat is a grey tabby called Pixel.\nWhat is my cat called?\n/sources\n\n" + "x" * 1_000_000
        + "\n/quit\nnever read\n"))
    code = 0
    try:
        main(["chat", "--json"])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and len(out["turns"]) == 1
    assert out["turns"][0]["citations"][0]["text"] == "My cat is a grey tabby called Pixel."
    assert any("characters long" in m for m in out["messages"])  # a 1 MB message is refused, chat goes on
    assert out["messages"][-1] == "Bye." and out["saved_memory"] is None
