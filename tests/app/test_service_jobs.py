"""Long jobs survive the process that ran them: an import cut short by kill -9 shows as
interrupted in `memex service status`, and running it again finishes it without duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from app.service.jobs import job_kind, recent
from tests.app.test_service import ROOT, memex, pid_of, service_env, wait_until

__all__ = ["service_env"]  # the fixture, shared with test_service.py

NOTES = 150


def write_notes(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"note-{i:03d}.md").write_text(
            f"# Walk {i}\n\nOn walk tag{i:03d}x I saw {i % 7 + 1} herons by the canal.\n"
        )


def running_with_progress(home: Path) -> bool:
    return any(j["state"] == "running" and j["done"] >= 1 for j in recent(home))


def stored_tags(home: Path) -> list[str]:
    res = memex("memories", "--limit", "10000", "--json")
    assert res.returncode == 0, res.stderr
    texts = [m["text"] for m in json.loads(res.stdout)["memories"]]
    return [t.split("tag", 1)[1][:3] for t in texts if "tag" in t]


def test_job_kinds_come_from_the_command_words():
    assert job_kind(["--home", "import", "import", "a.md"]) == "import"
    assert job_kind(["--json", "train", "--steps", "3"]) == "train"
    assert job_kind(["moe", "moefy", "x"]) == "moe moefy"
    assert job_kind(["moe", "bench"]) is None
    assert job_kind(["import", "--help"]) is None
    assert job_kind(["search", "import"]) is None


def test_an_import_cut_short_by_a_killed_service_is_shown_and_resumes(
    service_env: Path, tmp_path: Path
):
    notes = tmp_path / "notes"
    write_notes(notes, NOTES)
    assert memex("service", "start").returncode == 0
    service_pid = pid_of(service_env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "import", str(notes), "--json"],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert wait_until(lambda: running_with_progress(service_env), timeout=120)
    os.kill(service_pid, signal.SIGKILL)
    out, _err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert json.loads(out.strip().splitlines()[-1])["kind"] == "service_unavailable"

    status = json.loads(memex("service", "status", "--json").stdout)
    assert status["running"] is False
    cut = status["jobs"][0]
    assert cut["kind"] == "import" and cut["state"] == "interrupted" and cut["host"] == "service"
    assert 1 <= cut["done"] < cut["total"] == NOTES
    assert str(notes) in cut["command"] and "skipped" in cut["resume"]
    human = memex("service", "status").stdout
    assert "interrupted: memex import" in human and "already imported are skipped" in human

    res = memex("import", str(notes), "--json")  # a fresh service finishes the job
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    unchanged = [s for s in report["skipped"] if s["kind"] == "unchanged"]
    assert report["imported"] + len(unchanged) == NOTES
    tags = stored_tags(service_env)
    assert sorted(tags) == [f"{i:03d}" for i in range(NOTES)]  # every note once, none twice
    done, before = recent(service_env)[:2]
    assert done["state"] == "done" and done["done"] == done["total"] == NOTES
    assert before["id"] == cut["id"] and before["state"] == "interrupted"
    assert "interrupted" not in memex("service", "status").stdout  # the newer run finished it


def test_an_in_process_import_killed_is_interrupted_too(tmp_path: Path, memex_home: Path):
    notes = tmp_path / "notes"
    write_notes(notes, NOTES)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "import", str(notes), "--json"],
        cwd=ROOT,
        env={**os.environ, "MEMEX_NO_SERVICE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: running_with_progress(memex_home), timeout=120)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    (job,) = recent(memex_home)
    assert job["state"] == "interrupted" and job["host"] == "cli" and job["done"] >= 1


def test_training_runs_as_a_service_job_and_streams_its_progress(
    service_env: Path, tmp_path: Path, monkeypatch
):
    from tests.finetune.tiny_model import build_tiny

    tiny = build_tiny(tmp_path / "tiny-model")
    monkeypatch.setenv("MEMEX_MODEL_PATH", str(tiny.gguf))  # the service starts with it too
    monkeypatch.setenv("MEMEX_THREADS", "1")
    for text in ("I moved to Hamburg and live in Altona.", "We adopted a grey cat, Pixel."):
        assert memex("remember", text).returncode == 0
    service_pid = pid_of(service_env)
    res = memex("train", "--steps", "2", "--seq-len", "128", "--batch", "2", "--no-merge", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["steps"] == 2
    events = [json.loads(line) for line in res.stderr.splitlines() if line.startswith("{")]
    assert any(e.get("phase") == "done" or "step" in e for e in events)  # relayed as it ran
    assert pid_of(service_env) == service_pid  # trained inside the running service
    job = recent(service_env)[0]
    assert job["kind"] == "train" and job["host"] == "service" and job["state"] == "done"
    assert job["done"] == job["total"] == 2
