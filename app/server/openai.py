"""OpenAI chat-completions wire format: validated requests, response and chunk objects."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.answer import Answer, Citation
from inference.base import ChatMessage

MODEL_ID = "memex"


class WireMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | None = ""


class ChatRequest(BaseModel):
    """The subset of the OpenAI request memex honours; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str = MODEL_ID
    messages: list[WireMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=8192)


class BadRequest(Exception):
    """The request body is not a valid chat-completions request; the message says why."""


def parse_request(data: Any) -> ChatRequest:
    try:
        req = ChatRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise BadRequest(
            f"Invalid request field {loc or 'body'}: {first.get('msg', 'bad value')}."
        ) from exc
    if not any(m.role == "user" and (m.content or "").strip() for m in req.messages):
        raise BadRequest("The request has no user message with content.")
    return req


def split_conversation(req: ChatRequest) -> tuple[str, list[ChatMessage]]:
    """(question, history): the last user message is the question; earlier user/assistant turns are
    the history. Client system prompts are dropped: memex's own prompt carries the memory."""
    msgs = [m for m in req.messages if m.role in ("user", "assistant")]
    last_user = max(i for i, m in enumerate(msgs) if m.role == "user")
    history = [ChatMessage(m.role, m.content or "") for m in msgs[:last_user]]
    return msgs[last_user].content or "", history


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def _cites(citations: list[Citation]) -> list[dict[str, object]]:
    return [c.to_json() for c in citations]


def completion(cid: str, answer: Answer, prompt_tokens: int = 0) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL_ID,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.answer},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 0,
            "total_tokens": prompt_tokens,
        },
        "memex": {
            "citations": _cites(answer.citations),
            "abstained": answer.abstained,
            "retrieval_ms": round(answer.retrieval_ms, 2),
            "generation_ms": round(answer.generation_ms, 2),
        },
    }


def chunk(
    cid: str, delta: dict[str, str], finish: str | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL_ID,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if extra:
        obj["memex"] = extra
    return obj


def models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "memex"}],
    }


def error(message: str, kind: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code}}
