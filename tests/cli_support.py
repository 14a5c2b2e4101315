"""Run the real `memex` entry point in-process and read its one JSON object."""

from __future__ import annotations

import json

from app.cli import main


def run(capsys, *args: str) -> tuple[int, dict]:
    """(exit code, the last JSON line printed on stdout) for `memex ARGS`."""
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else {}
