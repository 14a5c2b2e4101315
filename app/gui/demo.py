"""Fill a data folder with the demo person (assets/demo/) and render the README screenshots.

    python -m app.gui.demo --home /tmp/memex-demo --screenshots docs/screenshots

Screenshots are rendered by `memex gui --screenshot` in a child process per screen, exactly
as a user would run it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from app.gui.theme_paths import assets_dir

TABS = ("chat", "memories", "profile", "training", "models", "bridge")


def demo_dir() -> Path:
    return assets_dir() / "demo"


def fill_demo(runtime: Any, folder: Path | None = None) -> dict[str, Any]:
    """Import the demo notes and set the demo profile (each value linked to its note)."""
    folder = folder or demo_dir()
    files = sorted(p for p in folder.iterdir() if p.suffix in (".jsonl", ".md") and p.name != "README.md")
    report = runtime.import_paths(files)
    store = runtime.memory
    profile = json.loads((folder / "profile.json").read_text(encoding="utf-8"))
    by_text = list(store.iter_memories())
    for key, spec in profile.items():
        source = next((m.id for m in by_text if spec["from"] in m.text), None)
        store.profile_set(key, spec["value"], source_memory=source)
    return {"imported": report.imported, "profile_fields": len(profile), "memories": store.count()}


def render_all(home: Path, out: Path, tabs: tuple[str, ...] = TABS) -> list[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1")
    written = []
    for tab in tabs:
        png = out / f"{tab}.png"
        subprocess.run([sys.executable, "-m", "app.cli", "--home", str(home), "gui", "--screenshot",
                        str(png), "--tab", tab], check=True, env=env)
        written.append(str(png))
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="data folder to fill (use a fresh one)")
    parser.add_argument("--screenshots", type=Path, default=None, help="folder for the PNGs")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from app.runtime import Runtime
    from app.settings import load_settings

    runtime = Runtime(load_settings(home=args.home))
    try:
        print(json.dumps(fill_demo(runtime)))
    finally:
        runtime.close()
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
        print(json.dumps({"screenshots": render_all(args.home, args.screenshots)}))


if __name__ == "__main__":
    main()
