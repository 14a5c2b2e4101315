"""The MCP tools by name: their arguments checked, their results shaped, each call recorded.

`run_tool` is the one place a tool runs, wherever that is: in the `memex mcp` process (no
service) or inside the resident service (which then also writes the event, so the store keeps
one writer). Imports nothing heavy and not the `mcp` SDK: the service imports it too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.mcp.engine import RuntimeEngine

log = logging.getLogger(__name__)
MAX_K = 50
RECENT = 20


def error_kind(exc: BaseException) -> str:
    """The stable slug of a failure ("locked" for every form of a locked vault)."""
    kind = str(getattr(exc, "kind", "") or exc.__class__.__name__)
    return "locked" if "locked" in kind.lower() or "Locked" in exc.__class__.__name__ else kind


def error_sentence(exc: BaseException) -> tuple[str, str]:
    """(message, kind) for any failure; a locked vault says how to unlock it."""
    kind = error_kind(exc)
    message = str(getattr(exc, "message", "") or exc) or kind
    expected = hasattr(exc, "kind") or exc.__class__.__name__ == "BackendError"
    if kind != "locked" and not expected:
        # Unexpected internals: say what failed without leaking a traceback.
        log.warning("mcp tool failed", exc_info=exc)
        message = f"memex could not do that ({exc.__class__.__name__}: {exc})."
    return message, kind


def _bad(message: str) -> Any:
    from app.errors import MemexError

    raise MemexError(message, kind="bad_input")


def _text(args: Mapping[str, Any], name: str) -> str:
    value = args.get(name)
    return value if isinstance(value, str) else _bad(f"{name} must be a string.")


def _optional(args: Mapping[str, Any], name: str) -> str | None:
    value = args.get(name)
    return None if value is None else _text(args, name)


def _k(args: Mapping[str, Any]) -> int:
    k = args.get("k", 5)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        _bad(f"k must be between 1 and {MAX_K}.")
    return int(k)


_TOOLS: dict[str, Callable[[RuntimeEngine, Mapping[str, Any]], dict[str, Any]]] = {
    "remember": lambda e, a: e.remember(
        _text(a, "text"), at=_optional(a, "at"), source=_optional(a, "source")
    ),
    "search": lambda e, a: {"results": e.search(_text(a, "query"), _k(a))},
    "ask": lambda e, a: e.ask(_text(a, "question")),
    "forget": lambda e, a: {"forgotten": e.forget(_text(a, "id"))},
    "profile": lambda e, a: {"fields": e.profile()},
    "resource:profile": lambda e, a: {"fields": e.profile()},
    "resource:recent": lambda e, a: {"memories": e.recent(RECENT)},
}
TOOL_NAMES = frozenset(_TOOLS)


def run_tool(engine: RuntimeEngine, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """The tool's JSON result; raises its error. Either way the call is recorded by name and
    outcome only (a locked vault cannot take the event: the call's outcome stands)."""
    fn = _TOOLS.get(tool)
    try:
        result = _bad(f"memex has no tool named {tool!r}.") if fn is None else fn(engine, args)
    except BaseException as exc:
        _record(engine, tool if fn is not None else "unknown", False, error_kind(exc))
        raise
    _record(engine, tool, True, "")
    return result


def _record(engine: RuntimeEngine, tool: str, ok: bool, kind: str) -> None:
    try:
        engine.record(tool, ok=ok, error_kind=kind)
    except Exception:  # noqa: BLE001 - e.g. locked: nothing can be written, the reply still goes
        log.debug("could not record the mcp call", exc_info=True)
