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

TABS = (
    "chat",
    "memories",
    "timeline",
    "inbox",
    "profile",
    "training",
    "models",
    "bridge",
    "bridge-confirm",
)
# The chat screenshot shows a real streamed answer from the bundled model to this question.
DEMO_QUESTION = "What is my cat called?"


def demo_dir() -> Path:
    return assets_dir() / "demo"


def fill_demo(runtime: Any, folder: Path | None = None) -> dict[str, Any]:
    """Import the demo notes and set the demo profile (each value linked to its note)."""
    folder = folder or demo_dir()
    files = sorted(
        p for p in folder.iterdir() if p.suffix in (".jsonl", ".md") and p.name != "README.md"
    )
    report = runtime.import_paths(files)
    store = runtime.memory
    profile = json.loads((folder / "profile.json").read_text(encoding="utf-8"))
    by_text = list(store.iter_memories())
    from memory.inbox import Inbox

    inbox = Inbox(store)
    pending = {item.key: item for item in inbox.list("pending")}
    for key, spec in profile.items():
        if spec.get("review"):
            continue  # left in the review inbox, as a new user would find it
        if key in pending:  # accept the suggestion, the way the Review inbox does
            inbox.accept(pending[key].id, spec["value"])
            continue
        source = next((m.id for m in by_text if spec["from"] in m.text), None)
        store.profile_set(key, spec["value"], source_memory=source)
    sites = [
        s.strip()
        for s in (folder / "sites.txt").read_text(encoding="utf-8").splitlines()
        if s.strip()
    ]
    if sites:
        from app.bridge.state import open_state

        state = open_state(runtime.settings, runtime.vault)
        try:
            for site in sites:
                state.permit(site)
            _demo_browser(state, sites[-1])
        finally:
            state.close()
    return {
        "imported": report.imported,
        "profile_fields": len(profile),
        "memories": store.count(),
        "sites": len(sites),
    }


def _demo_browser(state: Any, site: str) -> None:
    """A paired browser that has filled one form on `site`, so the Bridge screen shows a used
    setup."""
    import hashlib

    from app.bridge.crypto import b64e, fingerprint

    key = hashlib.sha256(
        b"memex demo browser"
    ).digest()  # a stand-in public key: never used to talk
    code = fingerprint(key)
    state.request_pairing(b64e(key), code, "Chromium extension")
    state.approve(code, "Laptop Chromium")
    state.confirm(site, b64e(key))
    state.audit("confirm", site, [], pairing="Laptop Chromium", outcome="always")
    state.audit(
        "fill", site, ["given-name", "family-name", "email", "tel"], pairing="Laptop Chromium"
    )


def render_all(home: Path, out: Path, tabs: tuple[str, ...] = TABS) -> list[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1")
    written = []
    for tab in tabs:
        png = out / f"{tab}.png"
        extra = (
            ["--ask", DEMO_QUESTION] if tab in ("chat", "models") else []
        )  # models: plots the answer
        subprocess.run(
            [
                sys.executable,
                "-m",
                "app.cli",
                "--home",
                str(home),
                "gui",
                "--screenshot",
                str(png),
                "--tab",
                tab,
                *extra,
            ],
            check=True,
            env=env,
        )
        written.append(str(png))
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--home", type=Path, required=True, help="data folder to fill (use a fresh one)"
    )
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
