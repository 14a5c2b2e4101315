"""Register the native-messaging host with Chromium, Chrome and Firefox.

Browsers start the host from an absolute `path` without arguments of ours, so install
writes a small launcher into bridge_dir that runs `memex --home HOME bridge host` with
this Python, and a host manifest into each browser's per-user folder (or into
`<user-data-dir>/NativeMessagingHosts/` for a custom Chromium profile). The same manifests
are in packaging/native-messaging/ as templates for packagers.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.settings import Settings

HOST_NAME = "org.memex.bridge"
# Pinned by the `key` in assets/browser-extension/manifest.json (sha256 of the key, a-p).
CHROMIUM_EXTENSION_ID = "ffeieaoapigdbaaflkjkcbgbhanbehho"
FIREFOX_EXTENSION_ID = "bridge@memex.local"
DESCRIPTION = "memex browser bridge: fills forms from your local memory"

# browser -> (family, per-user folder on Linux, on macOS)
BROWSERS: dict[str, tuple[str, str, str]] = {
    "chromium": (
        "chromium",
        ".config/chromium/NativeMessagingHosts",
        "Library/Application Support/Chromium/NativeMessagingHosts",
    ),
    "chrome": (
        "chromium",
        ".config/google-chrome/NativeMessagingHosts",
        "Library/Application Support/Google/Chrome/NativeMessagingHosts",
    ),
    "firefox": (
        "firefox",
        ".mozilla/native-messaging-hosts",
        "Library/Application Support/Mozilla/NativeMessagingHosts",
    ),
}


@dataclass(frozen=True)
class Installed:
    browser: str
    manifest: Path
    launcher: Path

    def to_json(self) -> dict[str, str]:
        return {
            "browser": self.browser,
            "manifest": str(self.manifest),
            "launcher": str(self.launcher),
        }


def host_manifest(family: str, launcher: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "name": HOST_NAME,
        "description": DESCRIPTION,
        "path": str(launcher),
        "type": "stdio",
    }
    if family == "firefox":
        manifest["allowed_extensions"] = [FIREFOX_EXTENSION_ID]
    else:
        manifest["allowed_origins"] = [f"chrome-extension://{CHROMIUM_EXTENSION_ID}/"]
    return manifest


def write_launcher(settings: Settings) -> Path:
    """bridge_dir/memex-bridge-host: runs this interpreter's memex for this data folder."""
    if os.name == "nt":
        from app.errors import MemexError

        raise MemexError(
            "Installing the browser bridge on Windows is not supported yet.", kind="unsupported"
        )
    settings.bridge_dir.mkdir(parents=True, exist_ok=True)
    launcher = settings.bridge_dir / "memex-bridge-host"
    root = Path(__file__).resolve().parents[2]  # so the launcher works from a source checkout too
    script = (
        "#!/bin/sh\n"
        "# Started by the browser for native messaging; written by `memex bridge install`.\n"
        f"HF_HUB_OFFLINE=1 PYTHONPATH={shlex.quote(str(root))}${{PYTHONPATH:+:$PYTHONPATH}} "
        f"exec {shlex.quote(sys.executable)} -m app.cli --home "
        f"{shlex.quote(str(settings.home.resolve()))} "
        'bridge host "$@"\n'
    )
    tmp = launcher.with_suffix(".tmp")
    tmp.write_text(script, encoding="utf-8")
    os.chmod(tmp, 0o700)
    os.replace(tmp, launcher)
    return launcher


def manifest_dir(browser: str, user_data_dir: Path | None = None) -> Path:
    family, linux, mac = BROWSERS[browser]
    if user_data_dir is not None:
        return user_data_dir / (
            "NativeMessagingHosts" if family == "chromium" else "native-messaging-hosts"
        )
    return Path.home() / (mac if sys.platform == "darwin" else linux)


def install(
    settings: Settings, browsers: list[str], user_data_dir: Path | None = None
) -> list[Installed]:
    launcher = write_launcher(settings)
    done: list[Installed] = []
    for browser in browsers:
        family = BROWSERS[browser][0]
        folder = manifest_dir(browser, user_data_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{HOST_NAME}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(
            json.dumps(host_manifest(family, launcher), indent=2) + "\n", encoding="utf-8"
        )
        os.replace(tmp, path)
        done.append(Installed(browser, path, launcher))
    return done


def installed(settings: Settings, user_data_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """Which browsers have a manifest, and whether it points at this data folder's launcher."""
    launcher = settings.bridge_dir / "memex-bridge-host"
    out: dict[str, dict[str, Any]] = {}
    for browser in BROWSERS:
        path = manifest_dir(browser, user_data_dir) / f"{HOST_NAME}.json"
        entry: dict[str, Any] = {
            "manifest": str(path),
            "installed": path.exists(),
            "current": False,
        }
        if path.exists():
            try:
                entry["current"] = json.loads(path.read_text(encoding="utf-8")).get("path") == str(
                    launcher
                )
            except (OSError, json.JSONDecodeError):
                entry["installed"] = False
        out[browser] = entry
    return out
