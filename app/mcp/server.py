"""The MCP server: five memory tools and two resources on the `mcp` SDK's FastMCP (1.x API).

Tools run in a worker thread so the protocol loop keeps answering (pings, cancels) while the
model generates. A failure of any kind (bad input, a locked vault, a model that cannot load)
becomes an MCP tool error with one sentence; the server itself never goes down with it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from app.mcp.tools import MAX_K, error_sentence

if TYPE_CHECKING:
    from mcp.server.fastmcp import FastMCP

    from app.mcp.engine import MemoryEngine

INSTRUCTIONS = (
    "memex is the user's personal memory, stored on their own computer. Use `search` or `ask` "
    "before answering questions about the user's life; `remember` stores something the user "
    "wants kept; `forget` removes a memory by id everywhere it is stored."
)
__all__ = ["INSTRUCTIONS", "MAX_K", "build_server", "error_sentence"]


def build_server(engine: MemoryEngine) -> FastMCP:
    import anyio
    from mcp.server.fastmcp import FastMCP
    from mcp.server.fastmcp.exceptions import ToolError

    server = FastMCP("memex", instructions=INSTRUCTIONS, log_level="WARNING")

    async def call(tool: str, args: dict[str, Any]) -> dict[str, Any]:
        # the engine runs the tool (here or in the service) and records it there
        try:
            return await anyio.to_thread.run_sync(lambda: engine.call(tool, args))
        except Exception as exc:
            raise ToolError(error_sentence(exc)[0]) from exc

    @server.tool()
    async def remember(
        text: str, at: str | None = None, source: str | None = None
    ) -> dict[str, Any]:
        """Store one memory. `at`: when it happened (ISO 8601, optional); `source`: its origin."""
        return await call("remember", {"text": text, "at": at, "source": source})

    @server.tool()
    async def search(query: str, k: int = 5) -> dict[str, Any]:
        """Find the k memories that best match the query (keywords and meaning)."""
        return await call("search", {"query": query, "k": k})

    @server.tool()
    async def ask(question: str) -> dict[str, Any]:
        """Answer a question about the user's life from their memories, with citations."""
        return await call("ask", {"question": question})

    @server.tool()
    async def forget(id: str) -> dict[str, Any]:  # noqa: A002 - the tool's public argument name
        """Forget one memory by id: gone from the database, the search indexes and training data."""
        return await call("forget", {"id": id})

    @server.tool()
    async def profile() -> dict[str, Any]:
        """The user's profile fields (WHATWG autocomplete names such as email, tel, given-name)."""
        return await call("profile", {})

    @server.resource(
        "memex://profile",
        name="profile",
        mime_type="application/json",
        description="The user's profile fields.",
    )
    async def profile_resource() -> str:
        return json.dumps(await call("resource:profile", {}))

    @server.resource(
        "memex://memories/recent",
        name="recent-memories",
        mime_type="application/json",
        description="The 20 most recent memories, newest first.",
    )
    async def recent_resource() -> str:
        return json.dumps(await call("resource:recent", {}))

    return server
