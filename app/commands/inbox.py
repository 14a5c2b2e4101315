"""`memex inbox list|accept ID|reject ID|edit ID VALUE`: review suggested profile values."""

from __future__ import annotations

from typing import Any

import click

from app.commands._common import AppContext, memex_command
from app.errors import MemexError


@click.group(name="inbox")
def inbox() -> None:
    """Review profile values suggested from your memories; nothing enters the profile unaccepted."""


def _human(p: dict[str, Any]) -> str:
    if not p["items"]:
        return "The inbox is empty."
    lines = []
    for i in p["items"]:
        change = f"  (was {i['previous_value']})" if i.get("previous_value") else ""
        lines.append(
            f"{i['id']:>4}  {i['status']:<10} {i['key']:<20} {i['value']}{change}"
            f"  [{i['confidence']:.2f}, memory {i['source_memory']}]"
        )
    return "\n".join(lines)


def _open(obj: AppContext) -> Any:
    from memory.inbox import Inbox

    return Inbox(obj.runtime.memory)


def _run(fn: Any) -> Any:
    from memory import MemoryStoreError

    try:
        return fn()
    except MemoryStoreError as exc:
        raise MemexError(str(exc), kind=getattr(exc, "kind", "error")) from exc


@memex_command("list", group=inbox, human=_human)
@click.option(
    "--status",
    type=click.Choice(["pending", "accepted", "rejected", "superseded", "all"]),
    default="pending",
    show_default=True,
    help="Which items to show.",
)
def list_(obj: AppContext, status: str) -> dict[str, Any]:
    """List suggested profile values."""
    items = _run(lambda: _open(obj).list(None if status == "all" else status))
    return {"items": [i.to_json() for i in items]}


@memex_command("accept", group=inbox, human=_human)
@click.argument("item_id", type=int)
def accept(obj: AppContext, item_id: int) -> dict[str, Any]:
    """Accept a suggestion: its value becomes a profile field."""
    item, _field = _run(lambda: _open(obj).accept(item_id))
    return {"items": [item.to_json()]}


@memex_command("reject", group=inbox, human=_human)
@click.argument("item_id", type=int)
def reject(obj: AppContext, item_id: int) -> dict[str, Any]:
    """Reject a suggestion; the same value is not suggested again."""
    item = _run(lambda: _open(obj).reject(item_id))
    return {"items": [item.to_json()]}


@memex_command("edit", group=inbox, human=_human)
@click.argument("item_id", type=int)
@click.argument("value")
def edit(obj: AppContext, item_id: int, value: str) -> dict[str, Any]:
    """Correct a suggestion's value and accept it."""
    item, _field = _run(lambda: _open(obj).accept(item_id, value))
    return {"items": [item.to_json()]}
