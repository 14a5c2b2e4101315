"""The local OpenAI-compatible API (`memex serve`): 127.0.0.1 only, bearer token, guarded."""

from app.server.http import MemexAPIServer, serve
from app.server.security import ensure_token

__all__ = ["MemexAPIServer", "ensure_token", "serve"]
