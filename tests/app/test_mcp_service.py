"""`memex mcp` through the resident service: the SDK's own stdio client talks to a real MCP
server process, which forwards every tool to a real service process (real SQLite, chromadb,
embedder and llama.cpp on the bundled model); the service alone opens the store."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from app.service import client
from app.service.lock import lock_held, read_owner
from app.service.paths import lock_path

pytest.importorskip("mcp")

ROOT = Path(__file__).resolve().parents[2]
LOCKED = "memex is locked: run `memex vault unlock`"


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch, memex_home: Path, tmp_path: Path):
    """Opt into the service (tests default to MEMEX_NO_SERVICE=1); stop every service after."""
    monkeypatch.delenv("MEMEX_NO_SERVICE", raising=False)
    monkeypatch.setenv("MEMEX_SERVICE_WARM_UP", "0")
    monkeypatch.setenv("MEMEX_ANSWER_STRATEGY", "generate")  # the same settings in every process
    yield memex_home
    for lock in tmp_path.rglob("service.lock"):
        owner = read_owner(lock)
        if not client.stop(lock.parent, wait=True) and owner is not None and owner.alive():
            os.kill(owner.pid, 9)


def memex(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )


def start_service() -> int:
    res = memex("service", "start", "--json")
    assert res.returncode == 0, res.stderr
    return int(json.loads(res.stdout)["pid"])


def payload(result: Any) -> dict[str, Any]:
    if getattr(result, "structuredContent", None):
        return dict(result.structuredContent)
    return json.loads(result.content[0].text)


def error_text(result: Any) -> str:
    assert result.isError, result
    return " ".join(getattr(c, "text", "") for c in result.content)


def holders(path: Path) -> set[int]:
    """The pids (of this user's processes) that have `path` open."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
        except OSError:
            continue
        if str(path) in links:
            found.add(int(proc.name))
    return found


def mcp_params(home: Path):
    from mcp import StdioServerParameters

    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "app.cli", "mcp"],
        env=dict(os.environ, MEMEX_HOME=str(home)),
        cwd=str(ROOT),
    )


async def _round_trip(home: Path) -> dict[str, Any]:
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    seen: dict[str, Any] = {}
    async with (
        stdio_client(mcp_params(home)) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        ana = payload(
            await session.call_tool(
                "remember",
                {
                    "text": "My sister Ana lives in Lisbon and works as a pediatric nurse.",
                    "at": "2024-03-01",
                },
            )
        )
        await session.call_tool("remember", {"text": "I bought a blue road bike in May."})
        seen["ana"] = ana
        seen["search"] = payload(
            await session.call_tool("search", {"query": "Where does Ana live?", "k": 2})
        )
        question = {"question": "Where does my sister Ana live?"}
        seen["ask"] = payload(await session.call_tool("ask", question))
        seen["recent"] = json.loads(
            (await session.read_resource("memex://memories/recent")).contents[0].text
        )
        seen["holders"] = holders(home / "memex.db")  # while the MCP server is up
        seen["forget"] = payload(await session.call_tool("forget", {"id": ana["id"]}))
        seen["after"] = payload(
            await session.call_tool("search", {"query": "Where does Ana live?", "k": 2})
        )
        seen["forget_again"] = error_text(await session.call_tool("forget", {"id": ana["id"]}))
        seen["bad_k"] = error_text(await session.call_tool("search", {"query": "bike", "k": 0}))
    return seen


def mcp_events(home: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(home / "memex.db") as db:
        return [
            json.loads(d)
            for (d,) in db.execute("SELECT detail FROM events WHERE kind='mcp_call' ORDER BY id")
        ]


@pytest.mark.slow
def test_round_trip_through_the_running_service(service_env: Path):
    pid = start_service()
    seen = anyio.run(_round_trip, service_env)
    ana_id = seen["ana"]["id"]
    assert seen["ana"]["created"] is True
    assert seen["search"]["results"][0]["id"] == ana_id
    assert "Lisbon" in seen["search"]["results"][0]["text"]
    assert seen["ask"]["answer"].strip() and not seen["ask"]["abstained"]
    assert ana_id in [c["id"] for c in seen["ask"]["citations"]]
    assert ana_id in [m["id"] for m in seen["recent"]["memories"]]
    assert seen["forget"] == {"forgotten": 1}
    assert ana_id not in [r["id"] for r in seen["after"]["results"]]
    assert f"No memory has the id {ana_id!r}." in seen["forget_again"]
    assert "k must be between" in seen["bad_k"]

    # The service did the work: it alone had the database open, it answered every call (the
    # same process throughout, no restart) and it wrote every event.
    assert seen["holders"] == {pid}
    info = client.status(service_env)
    assert info is not None and info["pid"] == pid and info["requests"] == 9
    rows = mcp_events(service_env)
    assert [r["tool"] for r in rows] == [
        "remember",
        "remember",
        "search",
        "ask",
        "resource:recent",
        "forget",
        "search",
        "forget",
        "search",
    ]
    assert {r["via"] for r in rows} == {"service"}
    assert [r["ok"] for r in rows][-3:] == [True, False, False]
    assert [r["error"] for r in rows][-2:] == ["not_found", "bad_input"]
    dumped = json.dumps(rows)
    assert "Lisbon" not in dumped and "Ana" not in dumped and "bike" not in dumped


async def _locked_calls(home: Path) -> list[str]:
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    out = []
    async with (
        stdio_client(mcp_params(home)) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for tool, args in (
            ("remember", {"text": "a"}),
            ("search", {"query": "a"}),
            ("ask", {"question": "a?"}),
            ("forget", {"id": "x"}),
            ("profile", {}),
        ):
            out.append(error_text(await session.call_tool(tool, args)))
        out.append("up" if (await session.list_tools()).tools else "down")
    return out


def test_locked_vault_refuses_through_the_service(
    capsys, service_env: Path, monkeypatch, tmp_path: Path
):
    from tests.cli_support import run

    monkeypatch.setenv("MEMEX_NO_SERVICE", "1")
    monkeypatch.setenv("MEMEX_PASSPHRASE", "correct horse battery staple")
    code, out = run(capsys, "--json", "vault", "enable")
    if code != 0:
        pytest.skip(f"the vault cannot be enabled here: {out.get('error')}")
    monkeypatch.delenv("MEMEX_PASSPHRASE")
    monkeypatch.delenv("MEMEX_NO_SERVICE")
    (tmp_path / "run").mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))  # no unlocked key kept there
    pid = start_service()
    texts = anyio.run(_locked_calls, service_env)
    assert texts[-1] == "up"
    assert all(LOCKED in t for t in texts[:-1]), texts
    info = client.status(service_env)
    assert info is not None and info["pid"] == pid and info["requests"] == 5


class _Local:
    """Stands in for the MCP process's own Runtime: records what reached it."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def call(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(tool)
        return {"fields": [], "route": "process"}

    def close(self) -> None:
        self.calls.append("closed")


def test_no_service_runs_the_tools_in_this_process_until_one_answers(
    service_env: Path, monkeypatch
):
    from app.service.mcp_calls import ServiceEngine

    monkeypatch.setenv("MEMEX_SERVICE_AUTOSTART", "0")  # none runs and none may start
    calls: list[str] = []
    engine = ServiceEngine(service_env, lambda: _Local(calls))
    assert engine.call("profile", {}) == {"fields": [], "route": "process"}
    assert engine.last_route == "process" and calls == ["profile"]
    assert not lock_held(lock_path(service_env))
    start_service()  # now one answers: the local store is closed, the service does the work
    assert engine.call("profile", {}) == {"fields": []}
    assert engine.last_route == "service" and calls == ["profile", "closed"]
    engine.close()


class _Refuse:
    def call(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        raise AssertionError("the service should have answered")

    def close(self) -> None:
        pass


def test_the_first_tool_call_starts_the_service_as_the_cli_does(service_env: Path):
    from app.service.mcp_calls import ServiceEngine

    assert not lock_held(lock_path(service_env))
    engine = ServiceEngine(service_env, _Refuse)
    assert engine.call("profile", {}) == {"fields": []} and engine.last_route == "service"
    info = client.status(service_env)
    assert info is not None and info["requests"] == 1
    assert [r["via"] for r in mcp_events(service_env)] == ["service"]


def test_the_mcp_process_opens_no_store_when_the_service_runs(service_env: Path):
    """What `memex mcp` runs per tool call, in a fresh process: the service answers, and that
    process loads neither the store's libraries nor the Runtime."""
    start_service()
    code = (
        "import json, sys\nfrom app.service.mcp_calls import mcp_engine\nfrom app.settings "
        "import load_settings\nengine = mcp_engine(load_settings())\n"
        "print(json.dumps(engine.call('remember', {'text': 'The boiler was serviced today.'})))\n"
        "print(json.dumps(engine.call('profile', {})))\n"
        "print(sorted(m for m in ('chromadb', 'sqlalchemy', 'torch', 'llama_cpp', "
        "'sentence_transformers', 'app.runtime', 'memory') if m in sys.modules))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert json.loads(lines[0])["created"] is True
    assert json.loads(lines[1]) == {"fields": []}
    assert lines[-1] == "[]"
    assert [(r["tool"], r["via"]) for r in mcp_events(service_env)] == [
        ("remember", "service"),
        ("profile", "service"),
    ]
