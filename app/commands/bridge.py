"""`memex autofill analyze` and `memex bridge install|status|pair|permit|revoke|audit|host`.

Site permissions and pairings change only here or in the app, never through a message
from the browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from app.commands._common import AppContext, memex_command
from app.errors import MemexError

if TYPE_CHECKING:
    from app.bridge.state import BridgeState

MAX_FORM_BYTES = 20 * 1024 * 1024


@click.group(name="autofill")
def autofill() -> None:
    """Classify and fill web form fields."""


def _analyze_human(p: dict[str, Any]) -> str:
    rows = [
        f"{f['ref']:<24} {f['kind']!s:<20} {f['source']:<28} "
        f"{'SENSITIVE' if f['sensitive'] else (f['value'] or '')}"
        for f in p["fields"]
    ]
    return "\n".join(rows) or "No form fields found."


@memex_command("analyze", group=autofill, human=_analyze_human)
@click.argument("form", type=click.Path(path_type=Path))
@click.option(
    "--url", default=None, help="The page's address (its origin decides which frames are foreign)."
)
@click.option(
    "--no-values", is_flag=True, default=False, help="Classify only; do not read the profile."
)
def analyze(obj: AppContext, form: Path, url: str | None, no_values: bool) -> dict[str, Any]:
    """Classify the fields of a saved HTML page and show what memex would fill."""
    from app.bridge.analyze import analyze_page

    html = _read_form(form)
    origin = None
    if url:
        from app.bridge.state import SiteError, normalize_site

        try:
            origin = normalize_site(url)
        except SiteError as exc:
            raise MemexError(
                f"--url {url!r} is not a web address ({exc}); use e.g. https://example.com.",
                kind="bad_input",
            ) from exc
    profile = {} if no_values else _profile(obj)
    return analyze_page(html, origin, profile)  # {"fields": [...], "plan": [...]}


def _read_form(form: Path) -> str:
    if not form.is_file():
        raise MemexError(f"No such file: {form}; give a saved HTML page.", kind="not_found")
    if form.stat().st_size > MAX_FORM_BYTES:
        raise MemexError(
            f"{form} is larger than 20 MB; save just the page with the form.", kind="bad_input"
        )
    data = form.read_bytes()
    if b"\x00" in data[:4096]:
        raise MemexError(f"{form} is not an HTML file (it looks binary).", kind="bad_input")
    return data.decode("utf-8", errors="replace")


def _profile(obj: AppContext) -> dict[str, str]:
    from app.bridge.access import runtime_profile

    return runtime_profile(obj.runtime)


# --- bridge ---------------------------------------------------------------------------------


@click.group(name="bridge")
def bridge() -> None:
    """Browser bridge: install, pair, permit, revoke."""


def _state(obj: AppContext) -> BridgeState:
    from app.bridge.state import open_state

    obj.settings.ensure_home()
    return open_state(obj.settings, obj.runtime.vault)  # keyed when the vault is on


@memex_command("install", group=bridge)
@click.option(
    "--browser",
    "browsers",
    multiple=True,
    type=click.Choice(["chromium", "chrome", "firefox"]),
    help="Browser to register with (repeatable; default: all).",
)
@click.option(
    "--user-data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A custom browser profile folder to register the host in.",
)
def install(
    obj: AppContext, browsers: tuple[str, ...], user_data_dir: Path | None
) -> dict[str, Any]:
    """Write the native-messaging host manifests (Chromium, Chrome, Firefox)."""
    from app.bridge import install as inst

    try:
        done = inst.install(obj.settings, list(browsers) or list(inst.BROWSERS), user_data_dir)
    except OSError as exc:
        raise MemexError(
            f"Could not write the host manifest: {exc.strerror} ({exc.filename}).", kind="io"
        ) from exc
    return {
        "host": inst.HOST_NAME,
        "extension_id": inst.CHROMIUM_EXTENSION_ID,
        "firefox_extension_id": inst.FIREFOX_EXTENSION_ID,
        "installed": [d.to_json() for d in done],
    }


def _status_human(p: dict[str, Any]) -> str:
    lines = [
        f"{b}: {'installed' if e['installed'] else 'not installed'}"
        for b, e in p["browsers"].items()
    ]
    lines.append(f"app running: {p['app_running']}")
    lines += [f"paired: {x['name']} ({x['code']})" for x in p["pairings"]]
    lines += [
        f"waiting for approval: {x['code']} {x['label']}  "
        f"(memex bridge pair {x['code']} --name NAME)"
        for x in p["pending"]
    ]
    lines += [f"permitted: {s}" for s in p["sites"]]
    return "\n".join(lines)


@memex_command("status", group=bridge, human=_status_human)
@click.option("--user-data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
def status(obj: AppContext, user_data_dir: Path | None) -> dict[str, Any]:
    """Installation, pairings, pending pairing requests and permitted sites."""
    from app.bridge.agent import AgentClient, AgentUnavailable, agent_socket_path
    from app.bridge.install import installed

    state = _state(obj)
    try:
        AgentClient(agent_socket_path(obj.settings), timeout=1.0).call("ping")
        running = True
    except AgentUnavailable:
        running = False
    try:
        return {
            "browsers": installed(obj.settings, user_data_dir),
            "app_running": running,
            "pairings": [p.to_json() for p in state.pairings()],
            "pending": [p.to_json() for p in state.pending()],
            "sites": state.sites(),
        }
    finally:
        state.close()


@memex_command("pair", group=bridge)
@click.argument("code", required=False)
@click.option("--name", default=None, help="A name for this browser, e.g. 'Laptop Chromium'.")
def pair(obj: AppContext, code: str | None, name: str | None) -> dict[str, Any]:
    """Approve a browser's pairing request (shown by the extension); without CODE list requests."""
    state = _state(obj)
    try:
        if code is None:
            return {"pending": [p.to_json() for p in state.pending()]}
        if not name or not name.strip():
            raise MemexError(
                "Give the browser a name with --name, e.g. --name 'Laptop Chromium'.",
                kind="bad_input",
            )
        paired = state.approve(code.strip(), name.strip()[:80])
        if paired is None:
            raise MemexError(
                f"No pairing request has the code {code!r}; run `memex bridge pair` to list them.",
                kind="not_found",
            )
        return {"paired": paired.to_json()}
    finally:
        state.close()


@memex_command("permit", group=bridge)
@click.argument("site")
def permit(obj: AppContext, site: str) -> dict[str, Any]:
    """Allow memex to fill forms on SITE (an origin like https://example.com)."""
    from app.bridge.state import SiteError

    state = _state(obj)
    try:
        return {"permitted": state.permit(site)}
    except SiteError as exc:
        raise MemexError(
            f"Cannot permit {site!r}: {exc}; use e.g. https://example.com.", kind="bad_input"
        ) from exc
    finally:
        state.close()


@memex_command("revoke", group=bridge)
@click.argument("site", required=False)
@click.option(
    "--pairing", default=None, help="Revoke a paired browser (its name or code) instead of a site."
)
def revoke(obj: AppContext, site: str | None, pairing: str | None) -> dict[str, Any]:
    """Withdraw a site permission, or a browser pairing with --pairing."""
    from app.bridge.state import SiteError

    if (site is None) == (pairing is None):
        raise MemexError(
            "Give either a SITE or --pairing NAME to revoke.", kind="usage", exit_code=2
        )
    state = _state(obj)
    try:
        if pairing is not None:
            n = state.revoke_pairing(pairing)
            if not n:
                raise MemexError(f"No active pairing is named {pairing!r}.", kind="not_found")
            return {"revoked_pairings": n}
        assert site is not None
        if not state.revoke_site(site):
            raise MemexError(f"{site} was not permitted.", kind="not_found")
        return {"revoked": site}
    except SiteError as exc:
        raise MemexError(f"Cannot revoke {site!r}: {exc}.", kind="bad_input") from exc
    finally:
        state.close()


@memex_command("audit", group=bridge)
@click.option("--limit", type=click.IntRange(1, 10000), default=50)
def audit(obj: AppContext, limit: int) -> dict[str, Any]:
    """What kinds of fields were filled where and when (values are never logged)."""
    state = _state(obj)
    try:
        return {"events": state.audit_log(limit)}
    finally:
        state.close()


@bridge.command(name="host", context_settings={"ignore_unknown_options": True})
@click.argument("browser_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def host(obj: AppContext, browser_args: tuple[str, ...]) -> None:
    """Native-messaging host (started by the browser, speaks framed JSON on stdin/stdout)."""
    import sys

    from app.bridge.host import run_host

    # browser_args: Chromium passes the caller's origin, Firefox the manifest path and extension id;
    # the host manifest's allowed_origins/allowed_extensions already restricts who may start us.
    sys.exit(run_host(obj.settings))
