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
    """Stdio MCP server: tools remember, search, ask, forget, profile; the profile and recent
    memories as resources."""
    import importlib.util

    if importlib.util.find_spec("mcp") is None:  # pragma: no cover - the SDK is a core dependency
        raise NotInstalledError("`memex mcp` needs the mcp package: pip install 'mcp>=1.20,<2'.")
    from app.mcp.server import build_server
    from app.service.mcp_calls import mcp_engine

    # through the resident service when one runs or can start; a passphrase file given to this
    # command cannot reach the service, so it keeps the store in this process
    engine = mcp_engine(obj.settings, prefer_service=not obj.passphrase_file)
    try:
        server = build_server(engine)
        _protocol_stdout()
        server.run("stdio")
    finally:
        engine.close()
    return None
