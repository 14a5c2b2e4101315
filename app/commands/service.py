"""`memex service start|stop|status|install|uninstall`: the resident service."""

from __future__ import annotations

import time
from typing import Any

import click

from app.commands._common import AppContext, memex_command
from app.errors import MemexError


@click.group("service")
def service() -> None:
    """The resident service: one process owns the data folder, so commands answer at once."""


def _home(obj: AppContext) -> Any:
    from app.service.paths import resolve_home

    return resolve_home(obj.home)


def _human_status(p: dict[str, Any]) -> str:
    from app.service.jobs import UNFINISHED, describe

    if not p["running"]:
        line = f"No memex service runs for {p['home']}."
    else:
        line = (
            f"memex service {p['version']} runs for {p['home']} (pid {p['pid']}, hosted by "
            f"{p['hosted_by']}, up {p['uptime_s']:.0f} s, {p['requests']} requests, "
            f"{p['in_flight']} now)."
        )
    # long jobs still running or cut short (the newest of each kind that is not done)
    unfinished = [j for j in _newest_per_kind(p.get("jobs", [])) if j["state"] in UNFINISHED]
    return "\n".join([line, *(f"  job {describe(j)}" for j in unfinished)])


def _newest_per_kind(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    newest = []
    for job in jobs:  # newest first
        if job["kind"] not in seen:
            seen.add(job["kind"])
            newest.append(job)
    return newest


@memex_command(
    "start",
    group=service,
    human=lambda p: (
        f"memex service runs (pid {p['pid']})."
        if p["started"]
        else f"memex service already runs (pid {p['pid']})."
    ),
)
def start(obj: AppContext) -> dict[str, Any]:
    """Start the service in the background (commands start it on first need anyway)."""
    from app.service import client

    home = _home(obj)
    running = client.status(home)
    if running is not None:
        return {"started": False, **running}
    sock = client.ensure_service(home)
    if sock is None:
        raise MemexError(
            f"The memex service did not start; see {home / 'service.log'}.", kind="service"
        )
    sock.close()
    info = client.status(home)
    if info is None:
        raise MemexError(
            f"The memex service did not start; see {home / 'service.log'}.", kind="service"
        )
    return {"started": True, **info}


@memex_command(
    "stop",
    group=service,
    human=lambda p: "memex service stopped." if p["stopped"] else "No memex service was running.",
)
def stop(obj: AppContext) -> dict[str, Any]:
    """Stop the service after the requests it is answering."""
    from app.service import client

    home = _home(obj)
    was = client.status(home)
    stopped = client.stop(home, wait=True)
    if was is not None and not stopped:
        raise MemexError("The memex service did not stop in time; try again.", kind="service")
    return {"stopped": stopped, "pid": was["pid"] if was else None}


@memex_command("status", group=service, human=_human_status)
def status(obj: AppContext) -> dict[str, Any]:
    """Whether the service runs, since when, how busy it is, and the recent long jobs."""
    from app.service import client
    from app.service.jobs import recent

    home = _home(obj)
    info = client.status(home)
    jobs = recent(home)  # the job journal: what ran, how far, and what a kill interrupted
    if info is None:
        return {"running": False, "home": str(home), "jobs": jobs}
    info["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(info["started_at"]))
    return {"running": True, **info, "jobs": jobs}


@memex_command("install", group=service, human=lambda p: f"memex starts at login ({p['path']}).")
def install(obj: AppContext) -> dict[str, Any]:
    """Start the service at login (an XDG autostart entry); off until you run this."""
    from app.service.autostart import install_autostart

    return {"installed": True, "path": str(install_autostart(_home(obj)))}


@memex_command(
    "uninstall",
    group=service,
    human=lambda p: (
        "memex no longer starts at login."
        if p["removed"]
        else "memex was not set to start at login."
    ),
)
def uninstall(obj: AppContext) -> dict[str, Any]:
    """Remove the login autostart entry."""
    from app.service.autostart import uninstall_autostart

    path, removed = uninstall_autostart()
    return {"removed": removed, "path": str(path)}
