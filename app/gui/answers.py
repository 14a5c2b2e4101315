"""Streaming an answer for the Chat screen: runs on a worker thread, never touches widgets.

Runtime.ask_stream returns an AnswerStream (app/answer.py): iterate it for text pieces,
then `result()` gives the Answer with its citations. Stopping closes the stream so the
backend releases the model at once.

While the answer streams, a live sample (tokens/s so far in this answer and, for an MoE
backend, the expert-cache hit rate over the decoded tokens so far) goes out as job progress
about twice a second, for the Models screen's plots; the answer's totals come with the result.
Running values, not per-interval ones: one scheduling hiccup on a busy machine must not read
as the model's speed. The cache counters are only read.
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from app.gui.workers import JobContext

log = logging.getLogger(__name__)
LIVE_EVERY_S = 0.5


@dataclass
class AnswerResult:
    """Plain data handed back to the GUI thread."""

    answer: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False
    abstained: bool = False
    describe: dict[str, str] = field(default_factory=dict)
    tokens: int = 0
    retrieval_s: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)


def _history_messages(history: list[tuple[str, str]]) -> list[Any]:
    from inference.base import ChatMessage

    out: list[Any] = []
    for q, a in history[-4:]:  # the last few turns keep follow-up questions in context
        out.append(ChatMessage("user", q))
        out.append(ChatMessage("assistant", a))
    return out


def _close(obj: Any) -> None:
    closer = getattr(obj, "close", None)
    if callable(closer):
        closer()


def _citation_json(c: Any) -> dict[str, Any]:
    if isinstance(c, dict):
        return dict(c)
    to_json = getattr(c, "to_json", None)
    return dict(to_json()) if callable(to_json) else {"id": getattr(c, "id", None)}


def stream_answer(services: Any, question: str, history: list[tuple[str, str]], ctx: JobContext) -> AnswerResult:
    services.memory()  # open the store under the services lock before the runtime uses it
    runtime = services.runtime
    ask_stream = runtime.ask_stream
    kwargs: dict[str, Any] = {}
    if history and "history" in inspect.signature(ask_stream).parameters:
        kwargs["history"] = _history_messages(history)
    probe = CacheProbe(runtime)
    t0 = time.perf_counter()
    stream = ask_stream(question, **kwargs)
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
        if result.stopped:
            _close(pieces)
            _close(getattr(stream, "_pieces", None))
    end = time.perf_counter()
    final = stream.result() if callable(getattr(stream, "result", None)) and not result.stopped else None
    if final is not None:
        result.answer = getattr(final, "answer", "")
        result.citations = [_citation_json(c) for c in getattr(final, "citations", [])]
        store = services.memory()
        for c in result.citations:  # the chip shows when the cited memory happened
            mem = store.get(str(c.get("id"))) if c.get("id") else None
            if mem is not None:
                c["when"] = mem.when.strftime("%Y-%m-%d")
        result.abstained = bool(getattr(final, "abstained", False))
        result.retrieval_s = float(getattr(final, "retrieval_ms", 0.0)) / 1000.0
    backend = getattr(runtime, "_backend", None) or None
    describe = getattr(backend, "describe", None)
    if callable(describe):
        try:
            result.describe = {k: str(v) for k, v in describe().items()}
        except Exception:  # noqa: BLE001 - display only
            result.describe = {}
    gen_s = max(1e-6, end - (first or t0))
    result.stats = {"tok_s": result.tokens / gen_s if result.tokens else 0.0,
                    "first_token_ms": ((first or end) - t0) * 1000.0,
                    "backend": str(getattr(backend, "name", "") or result.describe.get("backend", "")),
                    "model": result.describe.get("model", ""), "final": True}
    hit_rate = probe.hit_rate(since_mark=True)  # decode, as `memex moe bench` reports it
    if hit_rate is None:
        hit_rate = probe.hit_rate()  # a one-token answer: only its prefill used the cache
    if hit_rate is None:
        hit_rate = _reported_hit_rate(backend, result.describe)
    if hit_rate is not None:
        result.stats["hit_rate"] = hit_rate
    return result


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

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.backend = getattr(runtime, "_backend", None)
        self.base = cache_counts(self.backend)
        self.mark = self.base

    def _now(self) -> tuple[int, int] | None:
        backend = getattr(self.runtime, "_backend", None)
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
        """Since the answer began, or since the mark (decode only); None without counters or lookups."""
        counts = self._now()
        if counts is None:
            return None
        base = (self.mark if since_mark else self.base) or (0, 0)
        hits, misses = counts[0] - base[0], counts[1] - base[1]
        return hits / (hits + misses) if hits + misses > 0 else None


class _LiveSampler:
    """Emits {"live": True, "tok_s", "hit_rate"?} as job progress every LIVE_EVERY_S of generation."""

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
