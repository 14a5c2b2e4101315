"""The prompt for strategies that let the model write: packed within the model's context.

Today's date, profile facts, then memories (most relevant and newest first, each with its
date), then the recent conversation and the question.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from app.errors import MemexError
from inference.base import ChatMessage
from memory.types import ProfileField, SearchHit

BACKGROUND_SIMILARITY = 0.2

SYSTEM_TEMPLATE = (
    "You are memex, the user's personal memory. Today is {today}. "
    "Answer the user's question in one or two short sentences, using only the facts below. "
    'The facts were written by the user: "I" and "my" mean the user, '
    'so answer with "you" and "your". '
    "If a fact has a newer replacement, use the newest one."
)


def format_date(when: datetime) -> str:
    return when.strftime("%Y-%m-%d")


def format_today(now: datetime) -> str:
    return now.strftime("%A, %d %B %Y")


def memory_line(hit: SearchHit) -> str:
    text = " ".join(hit.text.split())
    note = " (outdated: replaced by a newer memory)" if hit.superseded_by else ""
    return f"- [{format_date(hit.when)}] {text}{note}"


def build_messages(
    question: str,
    hits: Sequence[SearchHit],
    profile: Sequence[ProfileField],
    *,
    count_tokens: Callable[[str], int],
    context_length: int,
    answer_tokens: int,
    history: Sequence[ChatMessage] = (),
    now: datetime,
) -> tuple[list[ChatMessage], list[SearchHit], int]:
    """Pack the prompt within the context; returns (messages, packed hits, prompt tokens).

    Priority when space runs out: question > system text > profile > memories (in the given
    order: most relevant first) > older conversation turns.
    """
    overhead = 6  # chat-template tokens per message
    system = SYSTEM_TEMPLATE.format(today=format_today(now))
    budget = context_length - answer_tokens - 8
    used = count_tokens(system) + count_tokens(question) + 2 * overhead
    if used > budget:
        raise MemexError(
            "The question is too long for the model's context; shorten it.", kind="bad_input"
        )
    parts = [system]
    profile_lines = [f"- {f.key}: {f.value}" for f in profile]
    if profile_lines:
        block = "\nProfile:\n" + "\n".join(profile_lines)
        cost = count_tokens(block)
        if used + cost <= budget:
            parts.append(block)
            used += cost
    packed: list[SearchHit] = []
    memory_lines: list[str] = []
    head = "\nMemories (newest facts win):\n"
    used += count_tokens(head)  # reserved up front so the lines below never overflow
    for hit in hits:
        line = memory_line(hit)
        cost = count_tokens(line) + 1
        if used + cost > budget:
            continue  # a shorter memory further down may still fit
        memory_lines.append(line)
        packed.append(hit)
        used += cost
    if memory_lines:
        parts.append(head + "\n".join(memory_lines))
    else:
        parts.append("\nNo memories match this question.")
    kept: list[ChatMessage] = []
    for msg in reversed(list(history)):  # newest turns are worth the most
        cost = count_tokens(msg.content) + overhead
        if used + cost > budget:
            break
        kept.append(msg)
        used += cost
    messages = [
        ChatMessage("system", "\n".join(parts)),
        *reversed(kept),
        ChatMessage("user", question),
    ]
    return messages, packed, used


def order_for_prompt(relevant: Sequence[SearchHit], others: Sequence[SearchHit]) -> list[SearchHit]:
    """Relevant memories first, in retrieval order (which already ranks current facts above
    the ones they replaced); weaker but related hits after them as background."""
    rel_ids = {h.id for h in relevant}
    background = [
        h
        for h in others
        if h.id not in rel_ids
        and not h.superseded_by
        and h.similarity is not None
        and h.similarity >= BACKGROUND_SIMILARITY
    ]
    return [*relevant, *background]
