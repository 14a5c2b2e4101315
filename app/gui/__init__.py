"""The memex desktop app (PySide6).

Importing this package loads Qt; the `gui` command imports it only when it runs.
Nothing here imports torch, chromadb or llama_cpp: those load in a worker after the
window is painted.
"""

from app.gui.app import render_screenshot, run_app

__all__ = ["render_screenshot", "run_app"]
