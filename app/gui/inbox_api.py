"""The review inbox for the GUI (memory/inbox.py), called on worker threads only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.errors import MemexError


def _inbox(services: Any) -> Any:
    from memory.inbox import Inbox

    return Inbox(services.memory())


def pending(services: Any) -> list[dict[str, Any]]:
    """Pending suggestions as plain dicts, each with the text of the memory it came from."""
    store = services.memory()
    items = [i.to_json() for i in _inbox(services).list("pending")]
    for it in items:
        mid = it.get("source_memory")
        mem = store.get(str(mid)) if mid else None
        it["source_text"] = " ".join(mem.text.split())[:200] if mem else ""
    return items


# action -> what it does to one inbox item; "edit" accepts an edited value.
ACTIONS: dict[str, Callable[[Any, int, str | None], Any]] = {
    "accept": lambda inbox, item_id, _value: inbox.accept(item_id),
    "edit": lambda inbox, item_id, value: inbox.accept(item_id, value),
    "reject": lambda inbox, item_id, _value: inbox.reject(item_id),
}


def decide(services: Any, item_id: Any, action: str, value: str | None = None) -> None:
    if action not in ACTIONS:
        raise MemexError(f"Unknown inbox action {action!r}.", kind="bad_input")
    try:
        ACTIONS[action](_inbox(services), int(item_id), value)
    except Exception as exc:
        if type(exc).__module__.startswith("memory"):
            raise MemexError(str(exc), kind=getattr(exc, "kind", "bad_input")) from exc
        raise
