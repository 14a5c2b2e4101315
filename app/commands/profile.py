"""`memex profile show|set|unset`: the fields autofill uses (WHATWG autocomplete names)."""

from __future__ import annotations

from typing import Any

import click

from app.commands._common import AppContext, memex_command
from app.commands.memory import memory_errors


@click.group(name="profile")
def profile() -> None:
    """Show or edit profile fields (keys are WHATWG autocomplete names: email, tel, given-name,
    ...)."""


def _human(p: dict[str, Any]) -> str:
    if not p["fields"]:
        return "The profile is empty. Set a field with `memex profile set email you@example.org`."
    return "\n".join(f"{f['key']:<20} {f['value']}" for f in p["fields"])


@memex_command("show", group=profile, human=_human)
def show(obj: AppContext) -> dict[str, Any]:
    """Show all profile fields."""
    return {"fields": [f.to_json() for f in obj.runtime.memory.profile()]}


@memex_command("set", group=profile, human=lambda p: f"{p['key']} = {p['value']}")
@click.argument("key")
@click.argument("value")
@click.option("--source-memory", default=None, help="Id of the memory this value came from.")
def set_(obj: AppContext, key: str, value: str, source_memory: str | None) -> dict[str, Any]:
    """Set one profile field."""
    from memory import MemoryStoreError

    try:
        if source_memory and obj.runtime.memory.get(source_memory) is None:
            from memory import NotFound

            raise NotFound(f"No memory has the id {source_memory!r}.")
        return obj.runtime.memory.profile_set(key, value, source_memory=source_memory).to_json()
    except MemoryStoreError as exc:
        raise memory_errors(exc) from exc


@memex_command(
    "unset", group=profile, human=lambda p: "Removed." if p["removed"] else "Was not set."
)
@click.argument("key")
def unset(obj: AppContext, key: str) -> dict[str, Any]:
    """Remove one profile field."""
    from memory import MemoryStoreError

    try:
        return {"key": key, "removed": obj.runtime.memory.profile_unset(key)}
    except MemoryStoreError as exc:
        raise memory_errors(exc) from exc
