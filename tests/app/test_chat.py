"""The chat session (`memex chat`): context across turns, slash commands, saving chats, and the
supporting quote with its evidence span marked in the terminal."""

from __future__ import annotations

import io
import json

import pytest

from app.answer import Answer, Citation, EvidenceSpan
from app.chat import ChatSession, MarkedQuote, marked_quote, quote_line
from app.cli import main
from tests.app._answers_support import make_runtime

CAT = "My cat is a grey tabby called Pixel."


@pytest.fixture
def rt(memex_home, embedder):
    r = make_runtime(memex_home, embedder, inbox_use_model=False, max_answer_tokens=24)
    r.remember("My cat is a grey tabby called Pixel.", source="diary")
    yield r
    r.close()


def test_turns_keep_the_conversation_in_context(memex_home, embedder):
    # free generation is the strategy whose prompt carries the conversation
    rt = make_runtime(
        memex_home,
        embedder,
        inbox_use_model=False,
        max_answer_tokens=24,
        answer_strategy="generate",
    )
    rt.remember(CAT, source="diary")
    try:
        _conversation(rt)
    finally:
        rt.close()


def _conversation(rt):
    session = ChatSession(rt)
    stream = session.send("What is my cat called?")
    pieces = list(stream)
    first = session.record(stream)
    assert (
        pieces
        and first.answer
        and [c.text for c in first.citations] == ["My cat is a grey tabby called Pixel."]
    )
    second = session.send("What colour is my cat?")
    roles = [m.role for m in second.prepared.messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert second.prepared.messages[1].content == "What is my cat called?"
    assert second.prepared.messages[2].content == first.answer
    session.record(second)
    assert len(session.turns) == 2 and session.close() is None  # save_chats is off by default
    assert rt.memory.count() == 1


def test_slash_commands(rt):
    session = ChatSession(rt)
    res = session.command("/remember My bike is a green Gazelle.")
    mem_id = res.text.split("[")[1].split("]")[0]
    assert rt.memory.get(mem_id).text == "My bike is a green Gazelle."
    assert "Already remembered" in session.command("/remember My bike is a green Gazelle.").text
    assert session.command("/sources").text == "The last answer cited no memories."
    session.record(session.send("Which bike do I have?"))
    assert mem_id in session.command("/sources").text
    assert session.command(f"/forget {mem_id}").text == "Forgot 1 memory."
    assert rt.memory.get(mem_id) is None
    assert (
        "No memory" in session.command("/forget nosuchid").text
        or "nosuchid" in session.command("/forget nosuchid").text
    )
    assert session.command("/remember").text.startswith("Usage")
    assert "Unknown command" in session.command("/dance").text
    assert session.command("/quit").quit


def test_save_chats_stores_the_conversation(memex_home, embedder):
    r = make_runtime(
        memex_home, embedder, inbox_use_model=False, max_answer_tokens=16, save_chats=True
    )
    try:
        r.remember("My cat is a grey tabby called Pixel.")
        session = ChatSession(r)
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
    monkeypatch.setattr(
        "sys.stdin",
        io.StringIO(
            "/remember My cat is a grey tabby called Pixel.\nWhat is my cat called?\n/sources\n\n"
            + "x" * 1_000_000
            + "\n/quit\nnever read\n"
        ),
    )
    code = 0
    try:
        main(["chat", "--json"])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and len(out["turns"]) == 1
    assert out["turns"][0]["citations"][0]["text"] == "My cat is a grey tabby called Pixel."
    assert any(
        "characters long" in m for m in out["messages"]
    )  # a 1 MB message is refused, chat goes on
    assert out["messages"][-1] == "Bye." and out["saved_memory"] is None


def test_record_marks_the_evidence_span_inside_the_quote(rt):
    session = ChatSession(rt)
    answer = session.record(session.send("What is my cat called?"))
    quote = session.last_quote
    assert quote is not None and quote.text == answer.quote
    span = answer.evidence[0]
    full = rt.memory.get(span.id).text
    assert quote.marked and quote.marked in full[span.start : span.end]
    assert "Pixel" in quote.marked and "Pixel" in answer.answer
    assert quote.before.endswith(full[: full.index(quote.marked)])  # the span, not an earlier copy
    assert (
        quote.before.startswith("On ") and "\u201c" in quote.before
    )  # the date frame is not marked
    assert session.turns[-1].quote == quote


def test_abstention_has_no_quote(rt):
    session = ChatSession(rt)
    answer = session.record(session.send("What is the name of my accountant?"))
    assert answer.abstained and session.last_quote is None


def _answer(quote: str, span: tuple[int, int], text: str = CAT, answer: str = "Pixel") -> Answer:
    return Answer(
        answer=answer,
        citations=[Citation("m1", text, None)],
        retrieval_ms=0.0,
        generation_ms=0.0,
        evidence=[EvidenceSpan("m1", *span)],
        quote=quote,
    )


def test_quote_line_marks_the_span_bold_on_a_terminal_and_with_guillemets_otherwise():
    quote = "On 8 May 2023 you wrote: \u201cMy cat is a grey tabby called Pixel.\u201d"
    at = CAT.index("Pixel")
    marked = marked_quote(_answer(quote, (at, at + 5)))
    assert marked == MarkedQuote(
        "On 8 May 2023 you wrote: \u201cMy cat is a grey tabby called ", "Pixel", ".\u201d"
    )
    assert quote_line(marked, "Pixel", tty=False) == (
        "On 8 May 2023 you wrote: \u201cMy cat is a grey tabby called \u00abPixel\u00bb.\u201d"
    )
    assert quote_line(marked, "Pixel", tty=True).endswith("called \x1b[1mPixel\x1b[0m.\u201d")
    # the dated-quote fallback printed the quote as the answer already: not twice
    assert quote_line(marked, quote, tty=False) == ""
    assert quote_line(None, "Pixel", tty=False) == ""


def test_marked_quote_edge_cases():
    words = " ".join(f"w{i}" for i in range(40)) + " Pixel"
    cut = "On 8 May 2023 you wrote: \u201c" + " ".join(f"w{i}" for i in range(28)) + " \u2026\u201d"
    assert marked_quote(_answer(cut, (len(words) - 5, len(words)), words)).marked == ""  # cut away
    # a span the shortened quote cuts in half: the part it still shows is marked
    at = words.index("w26")
    four = len("w26 w27 w28 w29")
    assert marked_quote(_answer(cut, (at, at + four), words)).marked == "w26 w27"
    # the date frame names the same word as the span: only the quoted text is marked
    text = "May was rainy."
    frame = marked_quote(
        _answer("On 8 May 2023 you wrote: \u201cMay was rainy.\u201d", (0, 3), text)
    )
    assert frame.before.endswith("\u201c") and frame.marked == "May"
    abstained = _answer("", (0, 0))
    abstained.abstained = True
    assert marked_quote(abstained) is None


def _run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_terminal_ask_and_chat_print_the_quote_with_the_span_marked(capsys, monkeypatch, embedder):
    monkeypatch.setattr("memory.store.Embedder", lambda *a, **k: embedder)
    monkeypatch.setenv("MEMEX_INBOX_USE_MODEL", "false")
    monkeypatch.setattr(
        "sys.stdin", io.StringIO("/remember " + CAT + "\nWhat is my cat called?\n/quit\n")
    )
    assert _run(["chat"]) == 0
    out = capsys.readouterr().out
    reply = out.split("memex> ", 1)[1].splitlines()
    assert "Pixel" in reply[0]
    assert reply[1].strip().startswith("On ") and "Pixel\u00bb" in reply[1], out
    marked = reply[1].split("\u00ab", 1)[1].split("\u00bb", 1)[0]
    assert marked and marked in CAT

    assert _run(["ask", "What is my cat called?"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "Pixel" in lines[0]
    assert "\u00ab" in lines[1] and "\u00bb" in lines[1] and lines[1].startswith("On ")
    assert CAT in lines[lines.index("Sources:") + 1]

    assert _run(["ask", "--json", "What is my cat called?"]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(payload) == {
        "answer",
        "citations",
        "evidence",
        "quote",
        "retrieval_ms",
        "generation_ms",
        "abstained",
        "build_ms",
        "strategy",
    }
    assert "\u00ab" not in payload["quote"] and payload["evidence"]
