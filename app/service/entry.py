"""The thin client's front door: route `memex ARGS` to the service before click loads.

`app.cli` builds the whole click command tree (click, the shared command plumbing); a
command the service answers needs none of it, and its import is a fifth of a warm command's
time. `main` decides from argv alone (app/service/route.py), relays to the service, and
imports app.cli only for a command that runs in this process.

`python -m app.cli` comes here first (the block at the top of app/cli.py); the console
script does when its entry point names `app.service.entry:main`.
"""

from __future__ import annotations

import sys
from typing import Any

# The same sets as app.cli's (a test keeps them equal); here so routing needs no click.
SERVICE_COMMANDS: frozenset[str] = frozenset(
    {
        "remember", "import", "search", "forget", "memories", "profile", "ask", "chat",
        "inbox", "autofill", "adapters", "serve", "train",
    }
)  # fmt: skip
EXCLUSIVE_COMMANDS: frozenset[str] = frozenset({"vault"})


def main(argv: list[str] | None = None) -> Any:
    """What app.cli.main does, with click imported only when the command runs here."""
    args = list(sys.argv[1:] if argv is None else argv)
    from app.service.route import route

    code = route(args, SERVICE_COMMANDS, EXCLUSIVE_COMMANDS)
    if code is not None:
        sys.exit(code)
    from app.cli import run_in_process
    from app.service.jobs import run_local

    return run_local(args, run_in_process)
