"""`Runtime.ask` / `memex ask`: retrieval, abstention, packing and citations on the real model."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.answer import ABSTAIN_ANSWER, build_messages, format_today
from app.cli import main
from app.errors import MemexError
from memory.types import SearchHit
from tests.app._answers_support import load_persona, make_runtime, persona


@pytest.fixture(scope="module")
def persona_rt(tmp_path_factory, embedder):
    rt = make_runtime(
        tmp_path_factory.mktemp("persona-home"),
        embedder,
        inbox_use_model=False,
        max_answer_tokens=16,
    )
    keys = load_persona(rt)
    yield rt, keys
    rt.close()


def test_right_memory_is_cited_for_persona_questions(persona_rt):
    rt, keys = persona_rt
    questions = persona("questions.json")
    hits = 0
    misses = []
    for q in questions:
        answer = rt.ask(q["q"])
        cited = [keys[c.id] for c in answer.citations]
        if any(e in cited for e in q["expect"]):
            hits += 1
        else:
            misses.append((q["q"], cited))
        assert answer.answer and not answer.abstained, q["q"]
    assert hits / len(questions) >= 0.9, misses


def test_never_remembered_questions_abstain(persona_rt):
    rt, _ = persona_rt
    for q in persona("never_remembered.json"):
        answer = rt.ask(q)
        assert answer.abstained and answer.answer == ABSTAIN_ANSWER and answer.citations == [], q
        assert answer.generation_ms < 1000  # no model call at all


def test_updated_fact_cites_the_current_memory(persona_rt):
    rt, keys = persona_rt
    cited = [keys[c.id] for c in rt.ask("What is my phone number?").citations]
    assert "phone_2022" in cited and "phone_2016" not in cited


def test_streaming_yields_tokens(persona_rt):
    rt, keys = persona_rt
    stream = rt.ask_stream("What is my cat's name?", strategy="generate")
    pieces = list(stream)
    assert len(pieces) >= 2
    result = stream.result()
    # What streams is the verified answer: the reply when the cited memory supports it, else
    # the dated quote.
    assert result.answer == "".join(pieces).strip()
    assert [keys[c.id] for c in result.citations] == ["pixel_cat"]
    assert result.first_token_ms is not None and result.generation_ms >= result.first_token_ms


def test_prompt_states_today_memory_dates_and_profile(persona_rt):
    rt, _ = persona_rt
    rt.memory.profile_set("email", "jonas@weber-lisboa.example")
    try:
        now = datetime(2026, 1, 2, tzinfo=UTC)
        stream = rt.ask_stream("What is my phone number?", now=now, strategy="generate")
        system = stream.prepared.messages[0].content
        assert format_today(now) in system and "2026" in system
        assert "[2022-01-10] My new phone number is +49 160 9876 5432" in system
        assert "email: jonas@weber-lisboa.example" in system
        assert (
            stream.prepared.prompt_tokens
            <= rt.backend.context_length - rt.settings.max_answer_tokens
        )
        stream.result()
    finally:
        rt.memory.profile_unset("email")


def _hit(i: int, text: str, sim: float) -> SearchHit:
    return SearchHit(
        id=f"m{i}",
        text=text,
        score=1.0 / (i + 1),
        kind="note",
        created_at=datetime(2020, 1, 1, tzinfo=UTC),
        at=datetime(2020 + i % 5, 1, 1, tzinfo=UTC),
        similarity=sim,
    )


def test_packing_fits_the_context_most_relevant_first():
    hits = [_hit(i, f"memory number {i} " + "word " * 40, 0.9 - i * 0.01) for i in range(30)]
    count = lambda t: len(t.split())
    msgs, packed, used = build_messages(
        "what?",
        hits,
        [],
        count_tokens=count,
        context_length=400,
        answer_tokens=64,
        now=datetime(2026, 1, 1),
    )
    assert used <= 400 - 64
    assert 0 < len(packed) < len(hits)
    assert [h.id for h in packed] == [h.id for h in hits[: len(packed)]]
    assert "memory number 0 " in msgs[0].content and msgs[-1].content == "what?"


def test_history_is_trimmed_oldest_first():
    from inference.base import ChatMessage

    history = [
        ChatMessage("user" if i % 2 == 0 else "assistant", f"turn {i} " + "x " * 50)
        for i in range(20)
    ]
    count = lambda t: len(t.split())
    msgs, _, used = build_messages(
        "now?",
        [],
        [],
        count_tokens=count,
        context_length=300,
        answer_tokens=50,
        history=history,
        now=datetime(2026, 1, 1),
    )
    assert used <= 250
    kept = [m.content.split()[1] for m in msgs[1:-1]]
    assert kept and kept[-1] == "19" and "0" not in kept


@pytest.mark.parametrize(
    "question, match", [("", "empty"), ("   ", "empty"), ("x" * 1_000_000, "characters long")]
)
def test_bad_questions_are_clear_errors(persona_rt, question, match):
    rt, _ = persona_rt
    before = rt.memory.count()
    with pytest.raises(MemexError, match=match) as err:
        rt.ask(question)
    assert err.value.kind == "bad_input" and rt.memory.count() == before


def test_abstaining_never_loads_the_model(tmp_path, embedder):
    rt = make_runtime(tmp_path / "h", embedder)
    try:
        answer = rt.ask("What is my dog's name?")
        assert answer.abstained and rt._backend is None
    finally:
        rt.close()


# -- the command ----------------------------------------------------------------------
from tests.cli_support import run  # noqa: E402


@pytest.fixture
def shared_embedder(monkeypatch, embedder):
    monkeypatch.setattr("memory.store.Embedder", lambda *a, **k: embedder)
    monkeypatch.setenv("MEMEX_MAX_ANSWER_TOKENS", "24")
    monkeypatch.setenv("MEMEX_N_CTX", "1024")
    monkeypatch.setenv("MEMEX_INBOX_USE_MODEL", "false")


def test_ask_command_json_contract(capsys, shared_embedder):
    code, mem = run(
        capsys, "remember", "My cat is a grey tabby called Pixel.", "--source", "diary", "--json"
    )
    assert code == 0
    code, out = run(capsys, "ask", "What is my cat called?", "--json")
    assert code == 0
    assert {"answer", "citations", "retrieval_ms", "generation_ms"} <= out.keys()
    assert out["citations"] == [
        {"id": mem["id"], "text": "My cat is a grey tabby called Pixel.", "source": "diary"}
    ]
    assert out["retrieval_ms"] >= 0 and out["generation_ms"] >= 0
    assert "Pixel" in out["answer"] and out["evidence"][0]["id"] == mem["id"]


def test_ask_command_streams_to_the_terminal(capsys, shared_embedder):
    run(capsys, "remember", "My cat is a grey tabby called Pixel.", "--json")
    code = 0
    try:
        main(["ask", "What", "is", "my", "cat", "called?"])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr().out
    assert code == 0 and "Sources:" in out and "Pixel" in out


@pytest.mark.parametrize("question", ["", "x" * 1_000_000])
def test_ask_command_bad_question(capsys, shared_embedder, question):
    code, out = run(capsys, "ask", question, "--json")
    assert code != 0 and out["kind"] == "bad_input" and "Traceback" not in json.dumps(out)


def test_model_file_that_is_not_gguf(capsys, shared_embedder, memex_home: Path, monkeypatch):
    code, mem = run(capsys, "remember", "My cat is a grey tabby called Pixel.", "--json")
    fake = memex_home / "models" / "fake.gguf"
    fake.parent.mkdir(parents=True)
    fake.write_text("not a model at all")
    monkeypatch.setenv("MEMEX_MODEL_PATH", str(fake))
    monkeypatch.setenv("MEMEX_ANSWER_STRATEGY", "generate")  # the default answers without the model
    code, out = run(capsys, "ask", "What is my cat called?", "--json")
    assert code != 0 and out["kind"] == "model" and "not a GGUF file" in out["error"]
    code, found = run(capsys, "search", "cat", "--json")
    assert [r["id"] for r in found["results"]] == [mem["id"]]  # nothing stored is lost


def test_missing_adapter_file(capsys, shared_embedder, memex_home: Path, monkeypatch):
    run(capsys, "remember", "My cat is a grey tabby called Pixel.", "--json")
    monkeypatch.setenv("MEMEX_ADAPTER_PATH", str(memex_home / "adapters" / "gone.gguf"))
    monkeypatch.setenv("MEMEX_ANSWER_STRATEGY", "generate")
    code, out = run(capsys, "ask", "What is my cat called?", "--json")
    assert (
        code != 0
        and out["kind"] == "model"
        and "adapter" in out["error"]
        and "does not exist" in out["error"]
    )


def test_corrupt_settings_file(capsys, memex_home: Path):
    memex_home.mkdir(parents=True, exist_ok=True)
    (memex_home / "settings.json").write_text("{ not json")
    code, out = run(capsys, "ask", "What is my cat called?", "--json")
    assert code != 0 and out["kind"] == "bad_settings" and "settings" in out["error"]
