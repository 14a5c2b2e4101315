"""GUI responsiveness benchmark: time to a visible window, and the longest GUI-thread block.

Prints one JSON object (benchmarks/_common.py's layout); its results:
  launch_to_first_paint_s    `memex gui` process start -> first paint of the main window
                             (median of runs)
  heavy_modules_at_paint     heavy libraries already imported when the window painted (should be [])
  blocks_ms                  longest gap of a 10 ms event-loop timer (minus 10 ms) while the app
                             {idles, warms up, imports a folder, answers a question, shows a
                             browser's first-fill confirmation (host -> app socket -> dialog
                             -> Allow once -> fill)}
                             with work in workers
  baseline_blocking_import_ms  the same import run on the GUI thread (what a naive app does)
and ratio `import_block_vs_blocking_import` = blocks_ms.import / baseline_blocking_import_ms
(the longest block with the import in a worker over the block of the naive app: smaller is better).

    HF_HUB_OFFLINE=1 QT_QPA_PLATFORM=offscreen python benchmarks/gui.py --json [--runs 3]
        [--files 300]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, benchmarks/ comes first on sys.path and its memory.py would shadow the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
from benchmarks._common import emit, parser, ratio, target  # noqa: E402

HEAVY = ("torch", "chromadb", "llama_cpp", "sentence_transformers", "transformers")

# Runs `memex --home H gui` exactly as the console script does, with an event filter that
# reports the first paint of the main window and then quits.
CHILD = r"""
import sys, time, json
t0 = float(sys.argv[1])
import app.gui.app as ga
from PySide6.QtCore import QObject, QEvent, QTimer
from PySide6.QtWidgets import QMainWindow
orig = ga.ensure_app
class First(QObject):
    done = False
    def eventFilter(self, obj, ev):
        if not self.done and ev.type() == QEvent.Type.Paint and isinstance(obj, QMainWindow):
            self.done = True
            heavy = [m for m in %r if m in sys.modules]
            print(json.dumps({"first_paint_s": time.time() - t0, "heavy": heavy}), flush=True)
            QTimer.singleShot(0, lambda: obj.close())
        return False
def patched(*a):
    app = orig(*a)
    app._first = First()
    app.installEventFilter(app._first)
    return app
ga.ensure_app = patched
from app.cli import main
main(["--home", sys.argv[2], "gui"])
""".replace("%r", repr(HEAVY))


def launch_times(home: Path, runs: int) -> tuple[list[float], list[str]]:
    env = dict(
        os.environ,
        QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
        HF_HUB_OFFLINE="1",
    )
    times, heavy = [], []
    for _ in range(runs):
        t0 = time.time()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, repr(t0), str(home)],
            capture_output=True,
            check=False,
            text=True,
            timeout=120,
            env=env,
            cwd=ROOT,
        )
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("{")), None)
        if line is None:
            raise SystemExit(f"the app did not paint: {out.stderr[-2000:]}")
        data = json.loads(line)
        times.append(data["first_paint_s"])
        heavy = data["heavy"]
    return times, heavy


class BlockMeter:
    """A 10 ms timer on the GUI thread; the longest late tick is the longest block."""

    def __init__(self, interval_ms: int = 10) -> None:
        from PySide6.QtCore import QTimer

        self.interval = interval_ms / 1000.0
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.last = time.perf_counter()
        self.worst = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self.last - self.interval)
        self.last = now

    def start(self) -> None:
        self.worst = 0.0
        self.last = time.perf_counter()
        self.timer.start()

    def stop_ms(self) -> float:
        self.timer.stop()
        return round(max(0.0, self.worst) * 1000.0, 1)


def spin(app: Any, until: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not until() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.002)


def notes(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"note-{i:04d}.md").write_text(
            f"# Day {i}\n\nOn day {i} I walked {i % 7 + 1} km along the river and met "
            f"friend number {i % 13}. "
            "We talked about gardens, trains and the book I am reading.\n",
            encoding="utf-8",
        )
    return folder


def responsiveness(tmp: Path, files: int) -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from app.gui.app import build_window, ensure_app
    from app.runtime import Runtime
    from app.settings import load_settings

    # Seed the data folder in another process, so the warm-up below loads torch, chromadb and
    # the embedding model cold, in its worker, as at a real launch.
    env = dict(os.environ, HF_HUB_OFFLINE="1", MEMEX_INBOX_USE_MODEL="false")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "--home",
            str(tmp / "home"),
            "remember",
            "My sister Elsa lives in Gothenburg and works as a botanist.",
        ],
        check=True,
        capture_output=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    app = ensure_app()
    runtime = Runtime(load_settings(home=tmp / "home"))
    runtime.settings = runtime.settings.model_copy(update={"inbox_use_model": False})
    heavy_before = [m for m in HEAVY if m in sys.modules]
    win = build_window(runtime, remember_geometry=False)
    win.show()
    meter = BlockMeter()
    blocks: dict[str, float] = {}

    meter.start()
    spin(app, lambda: False, 1.0)
    blocks["idle"] = meter.stop_ms()

    meter.start()
    win.services.warm_up()
    spin(app, lambda: not win.services.jobs.busy, 120)
    blocks["warm_up"] = meter.stop_ms()

    page = win.select("memories")
    spin(app, lambda: not win.services.jobs.busy, 60)
    meter.start()
    t0 = time.perf_counter()
    page.start_import([notes(tmp / "a", files)])
    spin(app, lambda: page.import_job is None, 600)
    import_s = time.perf_counter() - t0
    spin(app, lambda: not win.services.jobs.busy, 60)
    blocks["import"] = meter.stop_ms()
    imported = runtime.memory.count()

    chat = win.select("chat")
    meter.start()
    chat.ask("Where does my sister Elsa live?")
    spin(app, lambda: chat.job is None, 600)
    blocks["generation"] = meter.stop_ms()
    answer = chat.turns[-1]

    confirm = confirm_round_trip(app, win, runtime, meter)
    blocks["confirm"] = confirm.pop("block_ms")

    # Baseline: the same kind of import called on the GUI thread, as a naive app would.
    meter.start()
    t1 = time.perf_counter()
    runtime.import_paths([notes(tmp / "b", files)])
    baseline_ms = (time.perf_counter() - t1) * 1000.0
    app.processEvents()
    meter.stop_ms()
    win.close()
    win.services.jobs.wait(60000)
    runtime.close()
    return {
        "heavy_loaded_before_warm_up": heavy_before,
        "blocks_ms": blocks,
        "import_s": round(import_s, 2),
        "imported": imported,
        "answer_tokens_streamed": len(answer.answer.split()),
        "answer_citations": len(answer.citations),
        **confirm,
        "baseline_blocking_import_ms": round(baseline_ms, 1),
    }


def confirm_round_trip(app: Any, win: Any, runtime: Any, meter: BlockMeter) -> dict[str, Any]:
    """A paired browser's first fill, confirmed in the app's dialog, with the meter running."""
    import threading

    from app.bridge.host import build_service
    from tests.bridge.bridge_client import SIGNUP_FIELDS, FakeExtension

    site = "https://shop.example"
    runtime.memory.profile_set("email", "elsa@example.org")
    if not win.services.start_bridge_agent():
        return {"block_ms": None, "confirm_error": "the app socket could not start"}
    service = build_service(runtime.settings)
    ext = FakeExtension(service.handle)
    ext.hello()
    service.state.approve(ext.code, "benchmark")
    service.state.permit(site)
    reply: dict[str, Any] = {}
    meter.start()
    t0 = time.perf_counter()
    thread = threading.Thread(
        target=lambda: reply.update(
            ext.request(
                {"type": "fill", "origin": site, "top_origin": site, "fields": SIGNUP_FIELDS}
            )
        ),
        daemon=True,
    )
    thread.start()
    spin(app, lambda: bool(win.confirm_dialogs), 60)
    shown_ms = (time.perf_counter() - t0) * 1000.0
    if win.confirm_dialogs:
        win.confirm_dialogs[-1].once_btn.click()
    spin(app, lambda: bool(reply), 60)
    block = meter.stop_ms()
    thread.join(10)
    service.memory.close()
    service.state.close()
    win.services.stop_bridge_agent()
    return {
        "block_ms": block,
        "confirm_dialog_shown_ms": round(shown_ms, 1),
        "confirm_filled": reply.get("status") == "fill",
    }


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", type=int, default=300)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        times, heavy = launch_times(tmp / "launch-home", args.runs)
        result: dict[str, Any] = {
            "launch_to_first_paint_s": round(statistics.median(times), 3),
            "launch_runs_s": [round(t, 3) for t in times],
            "heavy_modules_at_paint": heavy,
        }
        result.update(responsiveness(tmp, args.files))
    blocks = [v for v in result["blocks_ms"].values() if v is not None]
    ratios = {
        "import_block_vs_blocking_import": ratio(
            result["blocks_ms"]["import"], result["baseline_blocking_import_ms"], 4
        )
    }
    targets = {
        "launch_to_first_paint_s": target(result["launch_to_first_paint_s"], "<=", 2.0),
        "longest_block_ms": target(max(blocks, default=None), "<=", 100.0),
        "heavy_modules_at_paint": target(len(heavy), "==", 0),
    }
    emit("gui", result, ratios, targets, as_json=args.json)


if __name__ == "__main__":
    main()
