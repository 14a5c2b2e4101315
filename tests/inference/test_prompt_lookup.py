"""Prompt-lookup decoding (inference/lookup.py) on the real bundled model: the same tokens as
plain greedy decoding, whatever the drafts."""

from __future__ import annotations

import numpy as np
import pytest

from inference.llamacpp import load_llama
from inference.lookup import MAX_DRAFT_TOKENS, LookupConfig, find_draft, install
from inference.models import resolve_model

NOTES = [
    "My phone number is 07700 900123. My email is priya.nair@halden.example.",
    "I started learning the violin this spring; my teacher is Mrs. Okafor.",
    "We adopted a ginger cat yesterday and called him Biscuit.",
]
QUOTING = [
    [{"role": "user", "content": "Copy this text exactly:\n" + " ".join(NOTES)}],
    [
        {
            "role": "user",
            "content": "Here are my notes:\n" + "\n".join(NOTES) + "\nWhat do my notes say?",
        }
    ],
    [
        {"role": "system", "content": "Repeat the user's note word for word."},
        {"role": "user", "content": "Note: " + NOTES[1]},
    ],
]


def _recorded(llm) -> list[list[int]]:
    """Every generation's tokens, as llama-cpp-python's completion loop received them."""
    runs: list[list[int]] = []
    inner = llm.generate

    def generate(tokens, **kwargs):
        said: list[int] = []
        runs.append(said)
        for token in inner(tokens, **kwargs):
            said.append(int(token))
            yield token

    llm.generate = generate
    return runs


@pytest.fixture(scope="module")
def pair():
    """Plain greedy (flash attention, like lookup) and prompt lookup on the same model."""
    model = resolve_model("")
    plain = load_llama(model, n_ctx=1024, flash_attn=True)
    lookup = load_llama(model, n_ctx=1024, prompt_lookup=8)
    yield plain, _recorded(plain), lookup, _recorded(lookup)
    plain.close()
    lookup.close()


def _say(llm, messages, max_tokens: int) -> dict:
    return llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0.0)


@pytest.mark.parametrize("messages", QUOTING, ids=["copy", "notes", "repeat"])
def test_lookup_equals_plain_greedy_token_for_token(pair, messages):
    plain, plain_runs, lookup, lookup_runs = pair
    a, b = _say(plain, messages, 64), _say(lookup, messages, 64)
    assert lookup_runs[-1][:64] == plain_runs[-1][:64]
    assert b["choices"][0]["message"]["content"] == a["choices"][0]["message"]["content"]
    assert b["usage"] == a["usage"]


def test_quoting_answers_accept_drafts(pair, monkeypatch):
    """The copy prompt's answer repeats a note: fewer decodes than tokens, drafts accepted."""
    from inference import lookup as lookup_mod

    _, _, lookup, _ = pair
    calls: list[int] = []
    inner = lookup_mod._Decoder.decode

    def decode(self, tokens, all_logits):
        calls.append(len(tokens))
        return inner(self, tokens, all_logits)

    monkeypatch.setattr(lookup_mod._Decoder, "decode", decode)
    lookup.reset()  # no cached prefix: the first decode is the whole prompt
    said = _say(lookup, QUOTING[0], 64)["usage"]["completion_tokens"]
    assert any(n > 1 for n in calls[1:])
    assert len(calls) - 1 < said


def test_no_ngram_match_decodes_plainly(pair):
    """A prompt with nothing to copy: no draft is found and the text is still plain greedy."""
    plain, plain_runs, lookup, lookup_runs = pair
    messages = [{"role": "user", "content": "Name three colours."}]
    a, b = _say(plain, messages, 24), _say(lookup, messages, 24)
    assert b["choices"][0]["message"]["content"] == a["choices"][0]["message"]["content"]
    assert lookup_runs[-1] == plain_runs[-1]


def test_max_tokens_is_respected_inside_a_draft(pair):
    plain, _, lookup, _ = pair
    for n in (1, 3, 7):
        a, b = _say(plain, QUOTING[0], n), _say(lookup, QUOTING[0], n)
        assert b["usage"]["completion_tokens"] == a["usage"]["completion_tokens"] == n
        assert b["choices"][0]["finish_reason"] == "length"
        assert b["choices"][0]["message"]["content"] == a["choices"][0]["message"]["content"]


def test_stops_at_end_of_sequence(pair):
    plain, _, lookup, lookup_runs = pair
    messages = [{"role": "user", "content": "Copy this text exactly:\n" + NOTES[2]}]
    a, b = _say(plain, messages, 200), _say(lookup, messages, 200)
    assert a["choices"][0]["finish_reason"] == "stop"
    assert b["choices"][0]["finish_reason"] == "stop"
    assert b["choices"][0]["message"]["content"] == a["choices"][0]["message"]["content"]
    assert lookup_runs[-1][-1] == lookup.token_eos()
    assert b["usage"]["completion_tokens"] < 200


def test_cached_prompt_and_kv_cache_stay_consistent(pair):
    """Asking twice reuses the cached prefix, rejected drafts left nothing behind in the cache.

    llama.cpp replays the last prompt token of a fully cached prompt alone, which can change
    plain greedy text too (a 1-token batch against a prompt-wide one), so each ask is compared
    with plain decoding from the same cache state.
    """
    plain, _, lookup, _ = pair
    for llm in (plain, lookup):
        llm.reset()
    for _ in range(2):
        a, b = _say(plain, QUOTING[1], 48), _say(lookup, QUOTING[1], 48)
        assert b["choices"][0]["message"]["content"] == a["choices"][0]["message"]["content"]
        # Lookup may hold accepted draft tokens past max_tokens; up to there, the same context.
        n = min(lookup.n_tokens, plain.n_tokens)
        assert lookup.input_ids[:n].tolist() == plain.input_ids[:n].tolist()


def test_sampling_and_grammars_keep_llama_cpp_loop(pair):
    plain, _, lookup, _ = pair
    grammar_text = 'root ::= "violin" | "piano"'
    from llama_cpp import LlamaGrammar

    kwargs = dict(messages=QUOTING[1], max_tokens=8, temperature=0.0)
    a = plain.create_chat_completion(
        grammar=LlamaGrammar.from_string(grammar_text, verbose=False), **kwargs
    )
    b = lookup.create_chat_completion(
        grammar=LlamaGrammar.from_string(grammar_text, verbose=False), **kwargs
    )
    assert b["choices"][0]["message"]["content"] == a["choices"][0]["message"]["content"]
    hot = lookup.create_chat_completion(messages=QUOTING[1], max_tokens=6, temperature=0.8)
    assert hot["usage"]["completion_tokens"] <= 6


def test_install_refuses_a_model_without_flash_attention():
    llm = load_llama(resolve_model(""), n_ctx=256)
    try:
        with pytest.raises(ValueError, match="flash_attn"):
            install(llm, LookupConfig())
    finally:
        llm.close()


def test_find_draft_prefers_the_longest_latest_match():
    cfg = LookupConfig(draft_tokens=3, max_ngram=3, min_ngram=1)
    h = np.array([5, 6, 7, 1, 2, 9, 6, 7, 8, 4, 6, 7], dtype=np.intc)
    # Suffix (6, 7) occurs at 1 and 6; the latest, followed by 8 4 6, wins.
    assert find_draft(h, cfg) == [8, 4, 6]
    h3 = np.array([1, 6, 7, 3, 3, 9, 6, 7, 8, 1, 6, 7], dtype=np.intc)
    # (1, 6, 7) matches only at 0: the three-token match beats the later two-token one.
    assert find_draft(h3, cfg) == [3, 3, 9]
    assert find_draft(np.array([1, 2, 3, 4], dtype=np.intc), cfg) == []
    assert find_draft(np.array([4], dtype=np.intc), cfg) == []
    assert find_draft(h, LookupConfig(draft_tokens=2, max_ngram=4, min_ngram=3)) == []


def test_lookup_config_rejects_bad_values():
    with pytest.raises(ValueError, match="draft_tokens"):
        LookupConfig(draft_tokens=0)
    with pytest.raises(ValueError, match="draft_tokens"):
        LookupConfig(draft_tokens=MAX_DRAFT_TOKENS + 1)
    with pytest.raises(ValueError, match="min_ngram"):
        LookupConfig(max_ngram=2, min_ngram=3)


def test_backend_option_streams_through_prompt_lookup(pair):
    """The `prompt_lookup` backend option (setting `prompt_lookup_tokens`) is what `generate`
    answers and `memex chat` stream through; its text is plain greedy's."""
    from inference.base import BackendConfig, ChatMessage, GenerationParams, create_backend

    plain, _, _, _ = pair
    messages = QUOTING[0]
    backend = create_backend("llamacpp", BackendConfig(n_ctx=1024, options={"prompt_lookup": "8"}))
    try:
        said = "".join(
            backend.stream(
                [ChatMessage(m["role"], m["content"]) for m in messages],
                GenerationParams(max_tokens=32, temperature=0.0),
            )
        )
    finally:
        backend.close()
    assert said == _say(plain, messages, 32)["choices"][0]["message"]["content"]
