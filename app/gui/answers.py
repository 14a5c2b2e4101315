"""Streaming an answer for the Chat screen: runs on a worker thread, never touches widgets.

The screen's conversation is an app.chat.ChatSession: `send` gives an AnswerStream to
iterate for text pieces, `record` finishes the turn (the Answer with its citations, evidence
spans and supporting quote) and keeps it as context for the next question. Stopping closes
the stream so the backend releases the model at once.

While the answer streams from the model, a live sample (tokens/s so far in this answer and,
for an MoE backend, the expert-cache hit rate over the decoded tokens so far) goes out as job
progress about twice a second, for the Models screen's plots; the answer's totals come with
the result. Running values, not per-interval ones: one scheduling hiccup on a busy machine
must not read as the model's speed. The cache counters are only read. An answer composed
from evidence without the model reports no speed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.gui.workers import JobContext

if TYPE_CHECKING:
    from app.chat import ChatSession, MarkedQuote
    from app.gui.services import Services
    from app.runtime import Runtime

log = logging.getLogger(__name__)
LIVE_EVERY_S = 0.5


@dataclass
class AnswerResult:
    """Plain data handed back to the GUI thread."""

    answer: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    quote: MarkedQuote | None = None  # the supporting sentence, its evidence span marked
    stopped: bool = False
    abstained: bool = False
    strategy: str = ""
    used_model: bool = False  # False: composed from evidence, the model did not run
    describe: dict[str, str] = field(default_factory=dict)
    tokens: int = 0
    retrieval_s: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)  # empty when the model did not run


class Conversation:
    """The Chat screen's ChatSession, made on the first question: importing app.chat loads
    the store's libraries, which must not happen before the window's first paint."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._session: ChatSession | None = None
        # One turn at a time, and saving waits for a turn still being recorded (quitting
        # while an answer streams saves the conversation with that turn in it).
        self.lock = threading.Lock()

    @property
    def session(self) -> ChatSession:
        if self._session is None:
            from app.chat import ChatSession

            self._session = ChatSession(self.runtime)
        return self._session

    def save(self) -> str | None:
        """Store the conversation as a chat memory if settings.save_chats is on (worker thread)."""
        with self.lock:
            return self._session.close() if self._session is not None else None


def stream_answer(
    services: Services, conversation: Conversation, question: str, ctx: JobContext
) -> AnswerResult:
    services.memory()  # open the store under the services lock before the runtime uses it
    with conversation.lock:
        return _answer(services, conversation, question, ctx)


def _answer(
    services: Services, conversation: Conversation, question: str, ctx: JobContext
) -> AnswerResult:
    from app.answer import STRATEGIES

    runtime = services.runtime
    session = conversation.session
    probe = CacheProbe(runtime)
    t0 = time.perf_counter()
    stream = session.send(question)
    result = AnswerResult()
    pieces = iter(stream)
    first: float | None = None
    live = _LiveSampler(ctx, probe)
    try:
        for piece in pieces:
            if first is None:
                first = time.perf_counter()
                live.start(first)
            if ctx.cancelled:
                result.stopped = True
                break
            result.tokens += 1
            ctx.chunk(piece)
            live.tick(result.tokens)
    finally:
        if isinstance(pieces, Generator):  # the stream's own cleanup closes the backend's generator
            pieces.close()
    end = time.perf_counter()
    final = session.record(stream)  # a stopped answer stays in the conversation, as in `memex chat`
    result.answer = stream.text.strip() if result.stopped else final.answer
    result.quote = None if result.stopped else session.last_quote
    result.citations = _citations(services, final.citations)
    result.abstained = final.abstained
    result.strategy = final.strategy
    result.retrieval_s = final.retrieval_ms / 1000.0
    backend = runtime.loaded_backend()
    chosen = STRATEGIES.get(final.strategy)
    result.used_model = backend is not None and (chosen is None or chosen.needs_model)
    if backend is not None:
        try:
            result.describe = {k: str(v) for k, v in backend.describe().items()}
        except Exception:  # noqa: BLE001 - display only
            result.describe = {}
    if not result.used_model or backend is None:
        return result
    gen_s = max(1e-6, end - (first or t0))
    result.stats = {
        "tok_s": result.tokens / gen_s if result.tokens > 1 else 0.0,
        "first_token_ms": ((first or end) - t0) * 1000.0,
        "backend": str(backend.name or result.describe.get("backend", "")),
        "model": result.describe.get("model", ""),
        "final": True,
    }
    hit_rate = probe.hit_rate(since_mark=True)  # decode, as `memex moe bench` reports it
    if hit_rate is None:
        hit_rate = probe.hit_rate()  # a one-token answer: only its prefill used the cache
    if hit_rate is None:
        hit_rate = _reported_hit_rate(backend, result.describe)
    if hit_rate is not None:
        result.stats["hit_rate"] = hit_rate
    return result


def _citations(services: Services, citations: list[Any]) -> list[dict[str, Any]]:
    """Citation dicts for the chips, once per memory, with the day the memory happened."""
    store = services.memory()
    out: dict[str, dict[str, Any]] = {}
    for c in citations:
        if c.id in out:
            continue
        item: dict[str, Any] = dict(c.to_json())
        mem = store.get(c.id)
        if mem is not None:
            item["when"] = mem.when.strftime("%Y-%m-%d")
        out[c.id] = item
    return list(out.values())


def cache_counts(backend: Any) -> tuple[int, int] | None:
    """(hits, misses) of an MoE backend's expert cache so far; None for backends without one."""
    stats = getattr(backend, "stats", None)
    if callable(stats):
        try:
            values = stats()
        except Exception:  # noqa: BLE001 - display only
            values = None
        if isinstance(values, dict) and "hits" in values and "misses" in values:
            return int(values["hits"]), int(values["misses"])
    counters = getattr(getattr(getattr(backend, "_model", None), "cache", None), "stats", None)
    if counters is not None and hasattr(counters, "hits") and hasattr(counters, "misses"):
        return int(counters.hits), int(counters.misses)
    return None


class CacheProbe:
    """Hit rate of the expert cache over a stretch of generation (counters are cumulative)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.backend = runtime.loaded_backend()
        self.base = cache_counts(self.backend)
        self.mark = self.base

    def _now(self) -> tuple[int, int] | None:
        backend = self.runtime.loaded_backend()
        counts = cache_counts(backend)
        if counts is not None and backend is not self.backend:
            # the backend was (re)loaded by this answer: its counters started at zero
            self.backend, self.base, self.mark = backend, (0, 0), (0, 0)
        return counts

    def set_mark(self) -> None:
        counts = self._now()
        if counts is not None:
            self.mark = counts

    def hit_rate(self, since_mark: bool = False) -> float | None:
        """Since the answer began, or since the mark (decode only); None without counters."""
        counts = self._now()
        if counts is None:
            return None
        base = (self.mark if since_mark else self.base) or (0, 0)
        hits, misses = counts[0] - base[0], counts[1] - base[1]
        return hits / (hits + misses) if hits + misses > 0 else None


class _LiveSampler:
    """Emits {"live": True, "tok_s", "hit_rate"?} as job progress every LIVE_EVERY_S."""

    def __init__(self, ctx: JobContext, probe: CacheProbe) -> None:
        self.ctx = ctx
        self.probe = probe
        self.samples = 0
        self._first = 0.0
        self._last = 0.0

    def start(self, now: float) -> None:
        self._first = self._last = now
        self.probe.set_mark()  # the prompt's prefill is done: hit rates from here are decode's

    def tick(self, tokens: int) -> None:
        now = time.perf_counter()
        if now - self._last < LIVE_EVERY_S or tokens < 2:
            return
        sample: dict[str, Any] = {"live": True, "tok_s": tokens / max(now - self._first, 1e-6)}
        hit_rate = self.probe.hit_rate(since_mark=True)
        if hit_rate is not None:
            sample["hit_rate"] = hit_rate
        self._last = now
        self.samples += 1
        self.ctx.progress(sample)


def _reported_hit_rate(backend: Any, describe: dict[str, str]) -> float | None:
    """A hit rate a backend reports itself (stats() or describe()), when no counters are visible."""
    stats = getattr(backend, "stats", None)
    values: dict[str, Any] = dict(describe)
    if callable(stats):
        try:
            values.update(stats())
        except Exception as exc:  # noqa: BLE001 - display only
            log.debug("backend stats unavailable: %s", exc)
    try:
        return float(values["hit_rate"]) if "hit_rate" in values else None
    except (TypeError, ValueError):
        return None
