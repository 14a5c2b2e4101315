"""Streaming an answer for the Chat screen: runs on a worker thread, never touches widgets.

Runtime.ask_stream returns an AnswerStream (app/answer.py): iterate it for text pieces,
then `result()` gives the Answer with its citations. Stopping closes the stream so the
backend releases the model at once.
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from app.gui.workers import JobContext

log = logging.getLogger(__name__)


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
    t0 = time.perf_counter()
    stream = ask_stream(question, **kwargs)
    result = AnswerResult()
    pieces = iter(stream)
    first: float | None = None
    try:
        for piece in pieces:
            if first is None:
                first = time.perf_counter()
            if ctx.cancelled:
                result.stopped = True
                break
            result.tokens += 1
            ctx.chunk(piece)
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
                    "first_token_ms": ((first or end) - t0) * 1000.0}
    hit_rate = _hit_rate(backend, result.describe)
    if hit_rate is not None:
        result.stats["hit_rate"] = hit_rate
    return result


def _hit_rate(backend: Any, describe: dict[str, str]) -> float | None:
    """The expert-cache hit rate of an MoE backend, if it reports one (stats() or describe())."""
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
