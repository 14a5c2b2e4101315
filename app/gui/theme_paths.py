"""Where memex's bundled assets live (no Qt import, so scripts can use it)."""

from __future__ import annotations

from pathlib import Path


def assets_dir() -> Path:
    """The repository's assets/ folder (app/gui/theme_paths.py -> ../../assets)."""
    return Path(__file__).resolve().parents[2] / "assets"
