"""The `memex` command contract for the memory commands (DESIGN.md), in-process and as a real
process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.cli_support import run  # noqa: E402


def test_remember_search_forget_roundtrip(capsys):
    code, r = run(
        capsys,
        "remember",
        "My bike is a green Gazelle.",
        "--at",
        "2023-04-01",
        "--source",
        "diary",
        "--json",
    )
    assert code == 0 and r["created"] is True and len(r["id"]) == 12
    code, s = run(capsys, "search", "which bike do I have", "--k", "3", "--json")
    assert code == 0
    hit = s["results"][0]
    assert {"id", "text", "score", "source", "created_at"} <= hit.keys()
    assert hit["id"] == r["id"] and hit["source"] == "diary" and hit["at"].startswith("2023-04-01")
    code, f = run(capsys, "forget", r["id"], "--json")
    assert code == 0 and f == {"forgotten": 1}
    code, s = run(capsys, "search", "bike", "--json")
    assert s["results"] == []


def test_json_flag_before_command_and_home_override(capsys, tmp_path):
    other = tmp_path / "elsewhere"
    code, r = run(capsys, "--home", str(other), "--json", "remember", "Stored elsewhere.")
    assert code == 0 and (other / "memex.db").exists()


def test_import_reports_and_exit_codes(capsys, tmp_path):
    good = tmp_path / "good.md"
    good.write_text("# Plants\n\nThe fig tree needs water on Sundays.")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x00\x01\x02" * 100)
    code, r = run(capsys, "import", str(good), str(bad), str(tmp_path / "x.unknown"), "--json")
    assert code == 0 and r["imported"] == 1 and r["chunks"] == 1
    assert any("binary" in e["reason"] for e in r["errors"])
    code, r = run(capsys, "import", str(tmp_path / "missing.txt"), "--json")
    assert code == 1 and r["kind"] == "import_failed" and "does not exist" in r["error"]


def test_forget_unknown_id_and_usage_errors(capsys):
    code, r = run(capsys, "forget", "nope123", "--json")
    assert code == 1 and r["kind"] == "not_found" and "nope123" in r["error"]
    code, r = run(capsys, "search", "x", "--bogus-flag", "--json")
    assert code == 2 and r["kind"] == "usage"
    code, r = run(capsys, "remember", "x", "--at", "last tuesday", "--json")
    assert code == 1 and "ISO 8601" in r["error"]
    code, r = run(capsys, "remember", "   ", "--json")
    assert code == 1 and r["kind"] == "bad_input"


def test_profile_commands(capsys):
    code, r = run(capsys, "profile", "set", "email", "jonas@example.org", "--json")
    assert code == 0 and r["key"] == "email"
    code, r = run(capsys, "profile", "show", "--json")
    assert [f["value"] for f in r["fields"]] == ["jonas@example.org"]
    code, r = run(capsys, "profile", "set", "shoe-size", "44", "--json")
    assert code == 1 and "WHATWG" in r["error"]
    code, r = run(capsys, "profile", "unset", "email", "--json")
    assert r["removed"] is True


def test_corrupt_settings_file_is_one_sentence(capsys, memex_home):
    memex_home.mkdir(parents=True, exist_ok=True)
    (memex_home / "settings.json").write_text("{not json")
    code, r = run(capsys, "memories", "--json")
    assert code == 1 and r["kind"] == "bad_settings" and "settings.json" in r["error"]


def test_doctor_reports_health(capsys):
    run(capsys, "remember", "Doctor test memory.", "--json")
    code, r = run(capsys, "doctor", "--json")
    assert r["data"]["memories"] == 1 and r["data"]["ok"] is True
    assert r["models"]["embeddings"]["ok"] is True


def test_kill_9_during_import_leaves_no_half_imported_source(tmp_path, memex_home):
    """A real `memex import` process is killed mid-way; every stored source is complete."""
    docs = tmp_path / "many"
    docs.mkdir()
    for i in range(400):
        (docs / f"n{i:03d}.md").write_text(
            "\n\n".join(
                f"# Day {i} part {j}\n\nNote {i}.{j} about topic {i * 7 + j}." for j in range(3)
            )
        )
    env = {**os.environ, "MEMEX_HOME": str(memex_home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "import", str(docs), "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = memex_home / "memex.db"
    deadline = time.time() + 240
    import sqlite3

    while time.time() < deadline:  # wait until some files are committed, then kill
        time.sleep(0.5)
        if db.exists():
            try:
                with sqlite3.connect(db) as c:
                    if c.execute("SELECT count(*) FROM sources").fetchone()[0] > 0:
                        break
            except sqlite3.Error:
                pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as c:
        per_source = c.execute(
            "SELECT s.path, count(m.id) FROM sources s LEFT JOIN memories m "
            "ON m.source_id = s.id GROUP BY s.id"
        ).fetchall()
    assert per_source and all(n == 3 for _, n in per_source)
    # a second run finishes the job; doctor then finds everything consistent
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "import", str(docs), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert json.loads(done.stdout)["imported"] == 3 * (400 - len(per_source))
    doc = subprocess.run(
        [sys.executable, "-m", "app.cli", "doctor", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert json.loads(doc.stdout)["data"]["ok"] is True
