"""Login autostart: an XDG autostart entry that starts the service (off until installed)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

ENTRY_NAME = "memex-service.desktop"


def autostart_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "autostart"


def entry_text(home: Path) -> str:
    # resident until logout: the login start is for the first command of the day and all after
    command = shlex.join(
        [sys.executable, "-m", "app.service", "--home", str(home), "--idle-minutes", "0"]
    )
    return "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            "Name=memex service",
            "Comment=Keeps your personal memory ready for the memex command and apps",
            f"Exec={command}",
            "Icon=memex",
            "Terminal=false",
            "NoDisplay=true",
            "X-GNOME-Autostart-enabled=true",
            "",
        ]
    )


def install_autostart(home: Path) -> Path:
    path = autostart_dir() / ENTRY_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(entry_text(home), encoding="utf-8")
    os.replace(tmp, path)
    return path


def uninstall_autostart() -> tuple[Path, bool]:
    path = autostart_dir() / ENTRY_NAME
    try:
        path.unlink()
    except FileNotFoundError:
        return path, False
    return path, True
