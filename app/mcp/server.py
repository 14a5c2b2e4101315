"""The MCP server: five memory tools and two resources on the `mcp` SDK's FastMCP (1.x API).

Tools run in a worker thread so the protocol loop keeps answering (pings, cancels) while the
model generates. A failure of any kind (bad input, a locked vault, a model that cannot load)
becomes an MCP tool error with one sentence; the server itself never goes down with it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from mcp.server.fastmcp import FastMCP

    from app.mcp.engine import MemoryEngine

T = TypeVar("T")
log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "memex is the user's personal memory, stored on their own computer. Use `search` or `ask` "
    "before answering questions about the user's life; `remember` stores something the user "
    "wants kept; `forget` removes a memory by id everywhere it is stored."
)
MAX_K = 50


def error_sentence(exc: BaseException) -> tuple[str, str]:
    """(message, kind) for any failure; a locked vault says how to unlock it."""
    kind = str(getattr(exc, "kind", "") or exc.__class__.__name__)
    message = str(getattr(exc, "message", "") or exc) or kind
    if "locked" in kind.lower() or "Locked" in exc.__class__.__name__:
        kind = "locked"
    elif not hasattr(exc, "kind") and exc.__class__.__name__ not in ("BackendError",):
        # Unexpected internals: say what failed without leaking a traceback.
        log.warning("mcp tool failed", exc_info=exc)
        message = f"memex could not do that ({exc.__class__.__name__}: {exc})."
    return message, kind


def build_server(engine: MemoryEngine) -> FastMCP:
    import anyio
    from mcp.server.fastmcp import FastMCP
    from mcp.server.fastmcp.exceptions import ToolError

    server = FastMCP("memex", instructions=INSTRUCTIONS, log_level="WARNING")

    async def call(tool: str, fn: Callable[[], T]) -> T:
        try:
            result = await anyio.to_thread.run_sync(fn)
        except Exception as exc:
            message, kind = error_sentence(exc)
            await anyio.to_thread.run_sync(lambda: _record(engine, tool, False, kind))
            raise ToolError(message) from exc
        await anyio.to_thread.run_sync(lambda: _record(engine, tool, True, ""))
        return result

    @server.tool()
    async def remember(text: str, at: str | None = None, source: str | None = None) -> dict[str, Any]:
        """Store one memory. `at`: when it happened (ISO 8601, optional); `source`: where it came from."""
        return await call("remember", lambda: engine.remember(text, at=at, source=source))

    @server.tool()
    async def search(query: str, k: int = 5) -> dict[str, Any]:
        """Find the k memories that best match the query (keywords and meaning)."""
        if not 1 <= k <= MAX_K:
            return await call("search", lambda: _bad(f"k must be between 1 and {MAX_K}."))
        return {"results": await call("search", lambda: engine.search(query, k))}

    @server.tool()
    async def ask(question: str) -> dict[str, Any]:
        """Answer a question about the user's life from their memories, with citations."""
        return await call("ask", lambda: engine.ask(question))

    @server.tool()
    async def forget(id: str) -> dict[str, Any]:  # noqa: A002 - the tool's public argument name
        """Forget one memory by id: removed from the database, the search indexes and training data."""
        return {"forgotten": await call("forget", lambda: engine.forget(id))}

    @server.tool()
    async def profile() -> dict[str, Any]:
        """The user's profile fields (WHATWG autocomplete names such as email, tel, given-name)."""
        return {"fields": await call("profile", engine.profile)}

    @server.resource("memex://profile", name="profile", mime_type="application/json",
                     description="The user's profile fields.")
    async def profile_resource() -> str:
        return json.dumps({"fields": await call("resource:profile", engine.profile)})

    @server.resource("memex://memories/recent", name="recent-memories", mime_type="application/json",
                     description="The 20 most recent memories, newest first.")
    async def recent_resource() -> str:
        return json.dumps({"memories": await call("resource:recent", lambda: engine.recent(20))})

    return server


def _bad(message: str) -> Any:
    from app.errors import MemexError

    raise MemexError(message, kind="bad_input")


def _record(engine: MemoryEngine, tool: str, ok: bool, kind: str) -> None:
    try:
        engine.record(tool, ok=ok, error_kind=kind)
    except Exception:  # a locked vault cannot take the event either; the call's outcome stands
        log.debug("could not record the mcp call", exc_info=True)
