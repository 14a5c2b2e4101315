"""`memex mcp`: serve memory tools to other AI apps (Claude Desktop, editors) over stdio MCP."""

from __future__ import annotations

import os
import sys

from app.commands._common import AppContext, memex_command
from app.errors import NotInstalledError


def _protocol_stdout() -> None:
    """Keep stdout for protocol messages only: fd 1 now goes to stderr, so stray prints from
    native libraries (llama.cpp, chromadb) cannot corrupt the JSON-RPC stream."""
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(protocol_fd, "w", encoding="utf-8", buffering=1)


@memex_command("mcp", human=lambda p: "")
def mcp(obj: AppContext) -> dict[str, object] | None:
    """Stdio MCP server: tools remember, search, ask, forget, profile; the profile and recent memories as resources."""
    import importlib.util

    if importlib.util.find_spec("mcp") is None:  # pragma: no cover - the SDK is a core dependency
        raise NotInstalledError("`memex mcp` needs the mcp package: pip install 'mcp>=1.20,<2'.")
    from app.mcp.engine import open_engine
    from app.mcp.server import build_server

    engine = open_engine(obj.settings)
    try:
        server = build_server(engine)
        _protocol_stdout()
        server.run("stdio")
    finally:
        engine.close()
    return None
