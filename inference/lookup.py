"""Greedy prompt-lookup decoding on llama-cpp-python: the same tokens as plain greedy, faster.

Answers that quote their evidence repeat token runs of the prompt. When the last tokens
generated also occur earlier in the prompt (or the answer), the tokens that followed them there
are a cheap draft: one batched decode scores the pending token plus the draft, and every draft
token that equals the model's own argmax is accepted at once. A wrong draft costs one wider
batch and is cut from the KV cache, so the text is plain greedy decoding's, token for token.

Identity needs logits that do not depend on the batch width. llama.cpp's CPU attention without
flash attention does not give that: a token scored inside a batch gets logits up to 0.9 away
from the same token decoded alone (bundled model), enough to flip near ties, which is why
llama-cpp-python's `LlamaPromptLookupDecoding` changed the text. With flash attention the
logits are bit-identical for any width, so `install` requires it (and plain greedy decoding
for comparison must use it too). llama-cpp-python's draft path is also slow: it turns on
`logits_all` for the whole context (a logits row per prompt token, copied to numpy) and drafts
10 tokens on a one-token match. Here only draft rows carry logits, argmax is read in place
from llama.cpp's buffer, and no match means a plain one-token step.

`install(llm, ...)` routes a `Llama`'s greedy, grammar-free generations through this loop, so
`create_chat_completion` keeps its chat template, stop strings and streaming unchanged.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from llama_cpp import Llama

# Batches of up to 33 tokens gave bit-identical logits to single steps (flash attention, the
# bundled model); 65 did not (another kernel), so a draft plus its pending token stays <= 32.
MAX_DRAFT_TOKENS = 31


@dataclass(frozen=True)
class LookupConfig:
    """How drafts are proposed.

    On the bundled Q4_1 model on CPU a batch costs nearly its width in single steps (2 tokens:
    1.9x one step, 8 tokens: 4.7x, 2 threads), so only long drafts that are mostly right pay:
    replaying the persona quoting prompts, drafts of 8 tokens after a match of 4 or more beat
    2-4 token drafts and one-token matches ("the", ",") that are wrong more often than not.

    draft_tokens: tokens proposed per step.
    max_ngram / min_ngram: the longest and shortest suffix of the text searched for earlier in
    the context.
    """

    draft_tokens: int = 8
    max_ngram: int = 8
    min_ngram: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.draft_tokens <= MAX_DRAFT_TOKENS:
            raise ValueError(
                f"draft_tokens must be between 1 and {MAX_DRAFT_TOKENS}, not {self.draft_tokens}."
            )
        if not 1 <= self.min_ngram <= self.max_ngram:
            raise ValueError(
                f"min_ngram ({self.min_ngram}) must be between 1 and max_ngram ({self.max_ngram})."
            )


def find_draft(history: np.ndarray, config: LookupConfig) -> list[int]:
    """The tokens that followed the latest earlier occurrence of the longest suffix n-gram.

    `history` is the context so far (prompt, answer, pending token). Longer suffixes are tried
    first; the latest occurrence wins because an answer that quotes one passage keeps going
    where it left off. Empty when nothing matches: the caller then decodes one plain token.
    """
    n = int(history.shape[0])
    for size in range(min(config.max_ngram, n - 1), config.min_ngram - 1, -1):
        # Windows starting at 0 .. n-size-1: each has at least one token after it.
        windows = np.lib.stride_tricks.sliding_window_view(history[: n - 1], size)
        hits = np.flatnonzero((windows == history[n - size :]).all(axis=1))
        if hits.size:
            start = int(hits[-1]) + size
            return [int(t) for t in history[start : start + config.draft_tokens]]
    return []


StoppingCriteria = Callable[[np.ndarray, np.ndarray], bool]
_NO_LOGITS = np.empty(0, dtype=np.single)


class _Decoder:
    """Batched `llama_decode` calls that keep `Llama.input_ids`/`n_tokens` in step with the KV
    cache, so a later plain `Llama.generate` reuses the prefix as usual."""

    def __init__(self, llm: Llama) -> None:
        self.llm = llm
        self.n_vocab = int(llm.n_vocab())

    def decode(self, tokens: Sequence[int], all_logits: bool) -> np.ndarray:
        """Decode `tokens` after the current context; argmax of each row that has logits
        (every token when `all_logits`, else the last)."""
        llm = self.llm
        llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens, -1)
        best = np.empty(0, dtype=np.intc)
        for i in range(0, len(tokens), llm.n_batch):
            chunk = list(tokens[i : i + llm.n_batch])
            n_past = llm.n_tokens
            llm._batch.set_batch(batch=chunk, n_past=n_past, logits_all=all_logits)
            llm._ctx.decode(llm._batch)
            llm.input_ids[n_past : n_past + len(chunk)] = chunk
            llm.n_tokens += len(chunk)
            llm._requires_eval = False
            rows = len(chunk) if all_logits else 1
            best = np.concatenate([best, self.rows(rows).argmax(axis=1).astype(np.intc)])
        return best

    def rows(self, rows: int) -> np.ndarray:
        """The last decode's logits, (rows, n_vocab), viewed in place (valid until next decode)."""
        ptr = ctypes.cast(self.llm._ctx.get_logits(), ctypes.POINTER(ctypes.c_float))
        return np.ctypeslib.as_array(ptr, shape=(rows, self.n_vocab))

    def truncate(self, n_tokens: int) -> None:
        """Forget every position from `n_tokens` on (rejected draft tokens)."""
        self.llm._ctx.kv_cache_seq_rm(-1, n_tokens, -1)
        self.llm.n_tokens = n_tokens

    def start(self, prompt: Sequence[int]) -> int:
        """Decode the prompt, reusing the cached prefix as `Llama.generate` does; first token."""
        llm = self.llm
        prompt = list(prompt)
        common = 0
        for a, b in zip(llm.input_ids[: llm.n_tokens].tolist(), prompt, strict=False):
            if a != b:
                break
            common += 1
        # A fully cached prompt replays its last token: the logits buffer may be stale.
        reuse = min(common, len(prompt) - 1)
        if reuse > 0 and llm._ctx.kv_cache_seq_rm(-1, reuse, -1):
            llm.n_tokens = reuse
        else:
            llm.reset()
            reuse = 0
        return int(self.decode(prompt[reuse:], all_logits=False)[-1])


def lookup_generate(
    llm: Llama,
    prompt: Sequence[int],
    config: LookupConfig,
    stopping_criteria: StoppingCriteria | None = None,
) -> Iterator[int]:
    """Greedy tokens after `prompt`, endless like `Llama.generate` (the caller stops on EOS,
    stop strings or max_tokens), drafted by prompt lookup and verified in one batch."""
    if not prompt:
        raise ValueError("The prompt is empty; prompt lookup needs at least one token.")
    dec = _Decoder(llm)
    pending = dec.start(prompt)
    n_ctx = int(llm.n_ctx())

    def stop(context: int) -> bool:
        # As in `Llama.generate`: the context the token was predicted from. The Jinja chat
        # formatters' criteria read only the tokens, so no logits row is copied for them.
        return stopping_criteria is not None and bool(
            stopping_criteria(llm.input_ids[:context], _NO_LOGITS)
        )

    while True:
        if stop(llm.n_tokens):
            return
        yield pending
        n_past = llm.n_tokens
        history = np.append(llm.input_ids[:n_past], np.intc(pending))
        draft = find_draft(history, config)[: max(0, n_ctx - n_past - 1)]
        best = dec.decode([pending, *draft], all_logits=bool(draft))
        accepted = 0
        while accepted < len(draft) and best[accepted] == draft[accepted]:
            accepted += 1
        if accepted < len(draft):
            dec.truncate(n_past + 1 + accepted)
        for i, token in enumerate(draft[:accepted]):
            if stop(n_past + 1 + i):
                return
            yield token
        pending = int(best[accepted])


def install(llm: Llama, config: LookupConfig) -> Llama:
    """Make `llm`'s greedy generations use prompt lookup; anything else keeps llama.cpp's loop.

    Sampling at a temperature, grammars, logits processors and repeat penalties change which
    token is chosen, so they go to the original `Llama.generate` untouched.
    """
    import llama_cpp

    if llm.context_params.flash_attn_type != llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED:
        raise ValueError(
            "Prompt lookup needs a model loaded with flash_attn=True: without it batched "
            "logits differ from single steps and the text would change."
        )
    original = llm.generate

    def generate(tokens: Sequence[int], **kwargs: Any) -> Iterator[int]:
        plain_greedy = (
            kwargs.get("temp", 0.8) == 0.0
            and kwargs.get("grammar") is None
            and kwargs.get("logits_processor") is None
            and kwargs.get("reset", True)
            and kwargs.get("repeat_penalty", 1.0) == 1.0
            and kwargs.get("frequency_penalty", 0.0) == 0.0
            and kwargs.get("presence_penalty", 0.0) == 0.0
            and len(tokens) > 0
        )
        if not plain_greedy:
            return original(tokens, **kwargs)
        return lookup_generate(llm, tokens, config, kwargs.get("stopping_criteria"))

    # Replaces the instance's generator: llama-cpp-python's chat path calls `self.generate`,
    # whose full positional signature we take as keywords.
    llm.generate = generate  # type: ignore[method-assign,assignment]
    return llm
