"""`memex serve [--port P]`: the local OpenAI-compatible API on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import click

from app.commands._common import AppContext, memex_command


@memex_command("serve")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port on 127.0.0.1 (default: the api_port setting; 0 picks a free one).",
)
def serve(obj: AppContext, port: int | None) -> dict[str, Any] | None:
    """Serve /v1/chat/completions and /v1/models to local apps (bearer token in
    $MEMEX_HOME/api-token)."""
    from app.server import serve as make_server
    from app.server.security import TOKEN_FILE

    server = make_server(obj.runtime, obj.settings.api_port if port is None else port)
    info = {
        "url": f"http://127.0.0.1:{server.port}/v1",
        "token_file": str(obj.settings.home / TOKEN_FILE),
        "models": ["memex"],
    }
    if obj.json:
        click.echo(json.dumps(info))  # the one JSON object, printed as soon as the port is open
    else:
        click.echo(
            f"memex API on {info['url']} (token in {info['token_file']}); Ctrl-C stops it.",
            err=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return None
