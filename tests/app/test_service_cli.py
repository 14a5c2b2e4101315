"""Existing `memex` contract tests, run again through the resident service.

Every test here shares one service (one data folder) so the models load once; the folder is
emptied through the CLI between tests. The in-process runs live in test_cli_memory.py and
test_ask.py; the outputs, exit codes and --json objects must be the same both ways.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from app.cli import main
from app.service import client
from tests.app import test_ask as ask_tests
from tests.app import test_cli_memory as memory_tests
from tests.app.test_service import stop_services
from tests.cli_support import run

SERVICE_ENV = {
    "MEMEX_MAX_ANSWER_TOKENS": "24",
    "MEMEX_N_CTX": "1024",
    "MEMEX_INBOX_USE_MODEL": "false",
}


@pytest.fixture(scope="module")
def service_home(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("service-cli") / "memex-home"
    yield home
    stop_services(home.parent)


@pytest.fixture
def memex_home(service_home: Path, monkeypatch: pytest.MonkeyPatch):
    """Overrides the per-test folder: these tests opt into the service and share its folder."""
    monkeypatch.delenv("MEMEX_NO_SERVICE", raising=False)
    monkeypatch.setenv("MEMEX_HOME", str(service_home))
    for key, value in SERVICE_ENV.items():
        monkeypatch.setenv(key, value)
    yield service_home
    _empty(service_home)


def _empty(home: Path) -> None:
    import io
    from contextlib import redirect_stdout

    def json_of(*args: str) -> dict:
        import json

        out = io.StringIO()
        with redirect_stdout(out):
            try:
                main([*args, "--json"])
            except SystemExit:
                pass
        lines = out.getvalue().strip().splitlines()
        return json.loads(lines[-1]) if lines else {}

    ids = [m["id"] for m in json_of("memories", "--limit", "100000").get("memories", [])]
    if ids:
        json_of("forget", *ids)
    for field in json_of("profile", "show").get("fields", []):
        json_of("profile", "unset", field["key"])


CASES = [
    memory_tests.test_remember_search_forget_roundtrip,
    memory_tests.test_import_reports_and_exit_codes,
    memory_tests.test_forget_unknown_id_and_usage_errors,
    memory_tests.test_profile_commands,
    ask_tests.test_ask_command_json_contract,
    ask_tests.test_ask_command_streams_to_the_terminal,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.removeprefix("test_") for c in CASES])
def test_contract_through_the_service(case, capsys, tmp_path: Path, memex_home: Path):
    before = client.status(memex_home)
    available = {
        "capsys": capsys,
        "tmp_path": tmp_path,
        "memex_home": memex_home,
        "shared_embedder": None,
    }
    case(**{name: available[name] for name in inspect.signature(case).parameters})
    after = client.status(memex_home)
    assert after is not None, "the commands did not run in a service"
    assert before is None or (
        after["pid"] == before["pid"] and after["requests"] > before["requests"]
    )


def test_bad_question_through_the_service(capsys, memex_home: Path):
    code, out = run(capsys, "ask", "", "--json")
    assert code != 0 and out["kind"] == "bad_input"
    assert client.status(memex_home) is not None
