"""`memex mcp`: memory tools for other AI apps over the Model Context Protocol (stdio).

Re-exports only; the `mcp` SDK is imported when the server is built.
"""

from app.mcp.engine import MemoryEngine, RuntimeEngine, open_engine

__all__ = ["MemoryEngine", "RuntimeEngine", "open_engine"]
