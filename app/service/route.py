"""Whether a command line runs in the service, decided from argv alone (nothing imported)."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path

from app.service.paths import resolve_home, service_disabled

_LOCAL_FLAGS = {"-h", "--help", "--version"}


def split_global(args: Sequence[str]) -> tuple[str | None, str | None]:
    """(--home value, the command name) from `memex [--home DIR] [--json] COMMAND ...`."""
    home: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--home":
            if i + 1 >= len(args):
                return home, None
            home = args[i + 1]
            i += 2
            continue
        if arg.startswith("--home="):
            home = arg.split("=", 1)[1]
        elif arg != "--json":
            return home, None if arg.startswith("-") else arg
        i += 1
    return home, None


def autostart_enabled() -> bool:
    return os.environ.get("MEMEX_SERVICE_AUTOSTART", "1").strip().lower() not in {
        "0",
        "false",
        "no",
        "off",
    }


def route(
    args: Sequence[str], service_commands: Collection[str], exclusive_commands: Collection[str] = ()
) -> int | None:
    """The exit status of ARGS run in the service, or None to run them in this process
    (MEMEX_NO_SERVICE=1, a command that stays local, help, or no service could start).
    An exclusive command stops a running service first and then runs in this process."""
    if _LOCAL_FLAGS.intersection(args):
        return None
    home, command = split_global(args)
    if command is not None and command in exclusive_commands:
        _stop_running(resolve_home(home))
        return None
    if service_disabled() or command is None or command not in service_commands:
        return None
    from app.service.client import relay

    return relay(list(args), resolve_home(home), autostart=autostart_enabled())


def _stop_running(home: Path) -> None:
    from app.service import client
    from app.service.lock import lock_held
    from app.service.paths import lock_path

    if not lock_held(lock_path(home)):
        return
    try:
        client.stop(home, wait=True)
    except client.ServiceCallError:
        pass  # the desktop app hosts it: the command itself says what the app must do
