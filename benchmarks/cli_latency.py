"""CLI latency: warm commands through the resident service vs. cold in-process runs, and a soak.

Every figure is a real `memex` process timed from its start: in-process cold runs
(MEMEX_NO_SERVICE=1, what every command cost before the service) are the baseline, measured
in the same run as the warm runs through the service. Medians of --runs runs (default 7).

    client_floor          `python -c pass`, and a warm `memories --limit 1` (interpreter +
                          thin-client imports + one round trip): what every warm command pays
    remember, search      whole command, wall clock
    ask                   first answer byte on stdout (first token) and the whole command
    import                100 fresh notes per run
    cold_first_ask        no service running: the CLI starts one and answers (first token)
    soak                  --soak-s seconds (default 60), 4 clients at once (2 remember, 2 ask):
                          requests made = answered, memories written = stored

Progress goes to stderr; stdout carries the one JSON object. The machine may be shared:
compare the ratios, not the absolute seconds, across machines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
from benchmarks._common import emit, parser, ratio, target  # noqa: E402

SEED = [
    "My dentist is Dr. Alvarez on Keizersgracht; the next check-up is in March.",
    "I parked the car on level 3 of the station garage, spot C12.",
    "My sister Lena lives in Utrecht and works as a nurse.",
    "The wifi password at the cabin is on the fridge, under the map.",
    "I started learning the cello in September with a teacher called Mira.",
    "My bike is a green Gazelle with a broken back light.",
    "The plumber said the boiler needs a new pressure valve before winter.",
    "I am allergic to penicillin; ibuprofen is fine.",
]
QUESTION = "Where did I park the car?"


def log(msg: str) -> None:
    print(f"[cli_latency] {msg}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, home: Path, max_tokens: int) -> None:
        self.home = home
        self.env = {
            **os.environ,
            "MEMEX_HOME": str(home),
            "MEMEX_MAX_ANSWER_TOKENS": str(max_tokens),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        self.env.pop("MEMEX_NO_SERVICE", None)
        self.cold_env = {**self.env, "MEMEX_NO_SERVICE": "1"}
        self.memex = [sys.executable, "-m", "app.cli"]
        self.failures = 0

    def run(
        self, *args: str, cold: bool = False, check: bool = True
    ) -> tuple[float, subprocess.CompletedProcess[str]]:
        start = time.perf_counter()
        res = subprocess.run(
            [*self.memex, *args],
            env=self.cold_env if cold else self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        elapsed = time.perf_counter() - start
        if res.returncode != 0 and _answered(res.stdout):
            self.failures += 1  # the answer came, then the process failed (e.g. on close)
        elif check and res.returncode != 0:
            raise RuntimeError(f"memex {' '.join(args)} failed: {res.stderr.strip()[-300:]}")
        return elapsed, res

    def first_token(self, question: str, *, cold: bool = False) -> tuple[float, float]:
        """(seconds to the first answer byte on stdout, seconds to exit) of `memex ask`."""
        start = time.perf_counter()
        proc = subprocess.Popen(
            [*self.memex, "ask", question],
            env=self.cold_env if cold else self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        first = os.read(proc.stdout.fileno(), 1)
        t_first = time.perf_counter() - start
        proc.stdout.read()
        proc.wait(timeout=600)
        if not first:
            raise RuntimeError(f"memex ask printed no answer ({proc.returncode})")
        if proc.returncode != 0:
            self.failures += 1  # answered, then failed (e.g. on close): counted, reported
        return t_first, time.perf_counter() - start

    def stop_service(self) -> None:
        self.run("service", "stop", check=False)


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, check=True, timeout=60)
    return time.perf_counter() - start


def _answered(stdout: str) -> bool:
    try:
        payload = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return False
    return isinstance(payload, dict) and "error" not in payload


def notes_dir(base: Path, tag: str, n: int) -> Path:
    folder = base / f"notes-{tag}"
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"note-{i:03d}.md").write_text(
            f"# Day {i} ({tag})\n\nOn day {i} I walked {i % 17 + 1} km with Rex "
            f"and noted idea {tag}-{i}.\n"
        )
    return folder


def timed(label: str, runs: int, fn: Any) -> list[float]:
    out = []
    for i in range(runs):
        out.append(fn(i))
        shown = out[-1] if isinstance(out[-1], tuple) else (out[-1],)
        log(f"{label} {i + 1}/{runs}: " + " / ".join(f"{v:.3f}" for v in shown) + " s")
    return out


def soak(b: Bench, seconds: float) -> dict[str, Any]:
    made = answered = written = 0
    texts: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def writer(w: int) -> None:
        nonlocal made, answered, written
        n = 0
        while time.monotonic() < stop_at:
            text = f"Soak note {w}-{n}: bought {n} stamps for letter {w}."
            _, res = b.run("remember", text, "--json", check=False)
            with lock:
                made += 1
                try:
                    if res.returncode == 0 and json.loads(res.stdout)["created"]:
                        answered += 1
                        written += 1
                        texts.append(text)
                except (ValueError, KeyError):
                    pass
            n += 1

    def asker(_a: int) -> None:
        nonlocal made, answered
        while time.monotonic() < stop_at:
            _, res = b.run("ask", QUESTION, "--json", check=False)
            with lock:
                made += 1
                try:
                    if res.returncode == 0 and "answer" in json.loads(res.stdout):
                        answered += 1
                except ValueError:
                    pass

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    threads += [threading.Thread(target=asker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _, res = b.run("memories", "--limit", "100000", "--json")
    stored_texts = {m["text"] for m in json.loads(res.stdout)["memories"]}
    stored = sum(1 for t in texts if t in stored_texts)
    return {
        "seconds": seconds,
        "requests_made": made,
        "requests_answered": answered,
        "memories_written": written,
        "memories_stored": stored,
        "lost": (made - answered) + (written - stored),
    }


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--runs", type=int, default=7, help="runs per figure (median)")
    ap.add_argument("--soak-s", type=float, default=60.0, help="soak length in seconds (0 = skip)")
    ap.add_argument("--import-notes", type=int, default=100)
    ap.add_argument("--max-tokens", type=int, default=48, help="answer length cap for ask")
    args = ap.parse_args()
    runs = max(1, args.runs)
    with tempfile.TemporaryDirectory(prefix="memex-cli-latency-") as tmp:
        base = Path(tmp)
        b = Bench(base / "home", args.max_tokens)
        try:
            results = measure(b, base, runs, args)
        finally:
            b.stop_service()
    r = results
    ratios = {
        "remember": {"warm_vs_cold": ratio(r["remember_s"]["warm"], r["remember_s"]["cold"])},
        "search": {"warm_vs_cold": ratio(r["search_s"]["warm"], r["search_s"]["cold"])},
        "ask_first_token": {
            "warm_vs_cold": ratio(r["ask_first_token_s"]["warm"], r["ask_first_token_s"]["cold"])
        },
        "ask_total": {"warm_vs_cold": ratio(r["ask_total_s"]["warm"], r["ask_total_s"]["cold"])},
        "import": {"warm_vs_cold": ratio(r["import_s"]["warm"], r["import_s"]["cold"])},
        "first_ask": {
            "service_cold_start_vs_in_process_cold": ratio(
                r["cold_first_ask_s"]["service"], r["ask_first_token_s"]["cold"]
            )
        },
    }
    targets = {
        "remember_warm_s": target(r["remember_s"]["warm"], "<=", 0.150),
        "search_warm_s": target(r["search_s"]["warm"], "<=", 0.250),
        "ask_first_token_warm_s": target(r["ask_first_token_s"]["warm"], "<=", 1.0),
        "cold_first_answer_s": target(r["cold_first_ask_s"]["service"], "<=", 6.0),
    }
    if "soak" in r:
        targets["soak_lost"] = target(r["soak"]["lost"], "==", 0)
    emit("cli_latency", results, ratios, targets, as_json=args.json)


def measure(b: Bench, base: Path, runs: int, args: Any) -> dict[str, Any]:
    seed = base / "seed.jsonl"  # one in-process import: nothing of the service is warm yet
    seed.write_text(
        "".join(json.dumps({"text": t, "source": "seed"}) + "\n" for t in SEED), encoding="utf-8"
    )
    b.run("import", str(seed), "--json", cold=True)
    b.run("service", "start")  # then one untimed search and ask: the warm figures start warm
    b.run("search", "warm up", "--json")
    b.first_token(QUESTION)
    # where a warm command's time goes: the interpreter alone, then the thin client's floor
    # (interpreter + client imports + one round trip for a command that does almost nothing)
    interpreter = timed(
        "python -c pass",
        runs,
        lambda i: _wall([sys.executable, "-c", "pass"], b.env),
    )
    floor = timed(
        "warm memories --limit 1", runs, lambda i: b.run("memories", "--limit", "1", "--json")[0]
    )
    warm_remember = timed(
        "warm remember",
        runs,
        lambda i: b.run("remember", f"Warm note {i}: tea with Bo.", "--json")[0],
    )
    warm_search = timed(
        "warm search", runs, lambda i: b.run("search", "where is the car", "--json")[0]
    )
    warm_ask = timed("warm ask", runs, lambda i: b.first_token(QUESTION))
    warm_import = timed(
        "warm import",
        runs,
        lambda i: b.run("import", str(notes_dir(base, f"warm{i}", args.import_notes)), "--json")[0],
    )
    soak_result = None
    if args.soak_s > 0:
        log(f"soak: {args.soak_s:.0f} s, 2 writers + 2 askers")
        soak_result = soak(b, args.soak_s)
    # the service from nothing: `memex ask` starts it and answers (process start -> first token)
    cold_first: list[float] = []
    for i in range(runs):
        b.stop_service()
        cold_first.append(b.first_token(QUESTION)[0])
        log(f"cold first ask through a fresh service {i + 1}/{runs}: {cold_first[-1]:.3f} s")
    b.stop_service()
    # the baseline: the same commands in-process, each a cold process as before the service
    cold_remember = timed(
        "cold remember",
        runs,
        lambda i: b.run("remember", f"Cold note {i}: tea with Ana.", "--json", cold=True)[0],
    )
    cold_search = timed(
        "cold search", runs, lambda i: b.run("search", "where is the car", "--json", cold=True)[0]
    )
    cold_ask = timed("cold ask", runs, lambda i: b.first_token(QUESTION, cold=True))
    cold_import = timed(
        "cold import",
        runs,
        lambda i: b.run(
            "import", str(notes_dir(base, f"cold{i}", args.import_notes)), "--json", cold=True
        )[0],
    )
    results: dict[str, Any] = {
        "runs": runs,
        "remember_s": {
            "warm": round(median(warm_remember), 3),
            "cold": round(median(cold_remember), 3),
        },
        "search_s": {"warm": round(median(warm_search), 3), "cold": round(median(cold_search), 3)},
        "ask_first_token_s": {
            "warm": round(median(a for a, _ in warm_ask), 3),
            "cold": round(median(a for a, _ in cold_ask), 3),
        },
        "ask_total_s": {
            "warm": round(median(t for _, t in warm_ask), 3),
            "cold": round(median(t for _, t in cold_ask), 3),
        },
        "import_s": {
            "notes": args.import_notes,
            "warm": round(median(warm_import), 3),
            "cold": round(median(cold_import), 3),
        },
        "cold_first_ask_s": {"service": round(median(cold_first), 3)},
        "client_floor_s": {
            "interpreter": round(median(interpreter), 3),
            "warm_round_trip": round(median(floor), 3),
        },
        "load_average": os.getloadavg()[0],
        "answered_then_failed": b.failures,
    }
    if soak_result is not None:
        results["soak"] = soak_result
    return results


if __name__ == "__main__":
    main()
