"""The memex desktop app (PySide6).

Importing this package loads Qt; the `gui` command imports it only when it runs.
Nothing here imports torch, chromadb or llama_cpp: those load in a worker after the
window is painted. So screens import the store, bridge, training and model modules inside
the functions that use them (on a worker, after the first paint), never at the top; those
imports are for the first paint, not to dodge an import cycle. The GUI never imports
app.service: `memex gui` hands it the service host (`run_app(..., host=...)`).
"""

from app.gui.app import render_screenshot, run_app

__all__ = ["render_screenshot", "run_app"]
