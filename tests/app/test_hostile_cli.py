"""Hostile input through the `memex` command: one sentence, a non-zero exit, `{"error","kind"}`
with --json, no traceback, and nothing already stored lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_support import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "MEMEX_NO_SERVICE", "1"
    )  # these run the command itself, not a resident service


def _human(capsys, *args: str) -> str:
    from app.cli import main

    try:
        main(list(args))
    except SystemExit as exc:
        assert not exc.code
    return capsys.readouterr().out


def _sentence(msg: str) -> None:
    assert msg and "Traceback" not in msg and "\n" not in msg.strip()


@pytest.mark.parametrize(
    "at", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "0001-01-01"]
)
def test_extreme_at_is_one_sentence(capsys, at: str) -> None:
    code, out = run(capsys, "--json", "remember", "An old note.", "--at", at)
    assert code != 0 and out["kind"] == "bad_input"
    _sentence(out["error"])


def test_remember_with_undecodable_bytes(capsys) -> None:
    code, out = run(
        capsys, "--json", "remember", "broken \udcff text"
    )  # how argv carries a 0xff byte
    assert code != 0 and out["kind"] == "bad_input" and "UTF-8" in out["error"]
    _sentence(out["error"])


def test_remember_with_undecodable_bytes_as_a_real_process(memex_home: Path) -> None:
    env = {**os.environ, "MEMEX_NO_SERVICE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            os.fsencode(sys.executable),
            b"-m",
            b"app.cli",
            b"--home",
            os.fsencode(memex_home),
            b"remember",
            b"caf\xe9 au lait",
        ],
        capture_output=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode != 0 and "UTF-8" in err and "Traceback" not in err, err


def test_empty_file_says_so_and_fails(capsys, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, out = run(capsys, "--json", "import", str(empty))
    assert (
        code == 1
        and out["kind"] == "nothing_imported"
        and "empty" in out["error"]
        and out["imported"] == 0
    )
    _sentence(out["error"])
    only_empty = tmp_path / "hollow"
    only_empty.mkdir()
    (only_empty / "a.md").write_text("")
    (only_empty / "b.txt").write_text("  \n")
    code, out = run(capsys, "--json", "import", str(only_empty))
    assert code == 1 and out["kind"] == "nothing_imported" and len(out["skipped"]) == 2


def test_folder_mixing_good_and_empty_files(capsys, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.txt").write_text("My bike lock code is 4512.")
    (folder / "empty.txt").write_text("")
    code, out = run(capsys, "--json", "import", str(folder))
    assert code == 0 and out["imported"] == 1
    assert [s["path"].endswith("empty.txt") for s in out["skipped"]] == [True]
    code, out = run(capsys, "--json", "import", str(folder))  # nothing new, nothing wrong
    assert code == 0 and out["imported"] == 0


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS refuses file names that are not UTF-8")
def test_non_utf8_name_given_directly(capsys, tmp_path: Path) -> None:
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/r\xe9sum\xe9.txt"))
    odd.write_text("I worked at the observatory from 2019 to 2022.")
    code, out = run(capsys, "--json", "import", str(odd))
    assert code == 0 and out["imported"] == 1
    text = _human(capsys, "import", str(odd))  # the human output prints the escaped name
    assert "r\\xe9sum\\xe9.txt: unchanged" in text
    code, out = run(capsys, "--json", "search", "observatory")
    assert code == 0 and out["results"][0]["source"].endswith("r\\xe9sum\\xe9.txt")
    code, out = run(capsys, "--json", "forget", "--source", str(odd))
    assert code == 0 and out["forgotten"] == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_named_pipe_is_refused(memex_home: Path, tmp_path: Path) -> None:
    pipe = tmp_path / "notes.txt"
    os.mkfifo(pipe)
    env = {**os.environ, "MEMEX_NO_SERVICE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "--home", str(memex_home), "--json", "import", str(pipe)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert (
        proc.returncode == 1
        and "not a regular file" in proc.stdout
        and "Traceback" not in proc.stderr
    )


def test_too_many_memories_asks_for_the_flag(capsys, tmp_path: Path) -> None:
    src = tmp_path / "days.md"
    src.write_text("".join(f"# Day {i}\nI swam {i} lengths.\n" for i in range(12)))
    code, out = run(capsys, "--home", str(tmp_path / "h"), "--json", "import", str(src))
    assert code == 0  # under the default limit
    src.write_text("".join(f"# Day {i}\nI ran {i} km.\n" for i in range(12)))
    code, out = run(
        capsys,
        "--home",
        str(tmp_path / "h"),
        "--json",
        "import",
        str(src),
        "--max-memories-per-file",
        "10",
    )
    assert code == 1 and out["kind"] == "import_failed"
    assert "12 memories" in out["error"] and "--max-memories-per-file 12" in out["error"]
    code, out = run(capsys, "--home", str(tmp_path / "h"), "--json", "search", "swam lengths")
    assert code == 0 and out["results"]  # the earlier import is intact
