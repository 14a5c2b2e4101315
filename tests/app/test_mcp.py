"""`memex mcp` through the MCP SDK's own stdio client: a real server process, real SQLite,
chromadb, embedder and llama.cpp on the bundled model."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp")

TOOLS = {"remember", "search", "ask", "forget", "profile"}


def payload(result: Any) -> dict[str, Any]:
    if getattr(result, "structuredContent", None):
        return dict(result.structuredContent)
    return json.loads(result.content[0].text)


def error_text(result: Any) -> str:
    assert result.isError, result
    return " ".join(getattr(c, "text", "") for c in result.content)


async def _round_trip(home: Path) -> dict[str, Any]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = dict(os.environ, MEMEX_HOME=str(home), MEMEX_ANSWER_STRATEGY="generate")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "app.cli", "mcp"],
        env=env,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    seen: dict[str, Any] = {}
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        seen["server"] = init.serverInfo.name
        seen["tools"] = {t.name for t in (await session.list_tools()).tools}
        seen["resources"] = {str(r.uri) for r in (await session.list_resources()).resources}

        ana = payload(
            await session.call_tool(
                "remember",
                {
                    "text": "My sister Ana lives in Lisbon and works as a pediatric nurse.",
                    "at": "2024-03-01",
                },
            )
        )
        await session.call_tool(
            "remember", {"text": "I bought a blue road bike in May.", "source": "diary"}
        )
        seen["ana"] = ana
        seen["search"] = payload(
            await session.call_tool("search", {"query": "Where does Ana live?", "k": 2})
        )
        seen["ask"] = payload(
            await session.call_tool("ask", {"question": "Where does my sister Ana live?"})
        )
        recent = await session.read_resource("memex://memories/recent")
        seen["recent"] = json.loads(recent.contents[0].text)
        seen["profile"] = payload(await session.call_tool("profile", {}))
        seen["forget"] = payload(await session.call_tool("forget", {"id": ana["id"]}))
        seen["after"] = payload(
            await session.call_tool("search", {"query": "Where does Ana live?", "k": 2})
        )
        seen["forget_again"] = error_text(await session.call_tool("forget", {"id": ana["id"]}))
        seen["empty"] = error_text(await session.call_tool("remember", {"text": "   "}))
        seen["bad_at"] = error_text(
            await session.call_tool("remember", {"text": "x", "at": "someday"})
        )
        seen["bad_k"] = error_text(await session.call_tool("search", {"query": "bike", "k": 0}))
        # the server survived every error
        seen["still_up"] = payload(
            await session.call_tool("search", {"query": "road bike", "k": 1})
        )
    return seen


@pytest.mark.slow
def test_round_trip_remember_search_ask_forget(memex_home: Path):
    seen = anyio.run(_round_trip, memex_home)
    assert seen["server"] == "memex"
    assert seen["tools"] == TOOLS
    assert seen["resources"] == {"memex://profile", "memex://memories/recent"}
    ana_id = seen["ana"]["id"]
    assert seen["ana"]["created"] is True
    assert seen["search"]["results"][0]["id"] == ana_id
    assert "Lisbon" in seen["search"]["results"][0]["text"]
    answer = seen["ask"]
    assert answer["answer"].strip() and not answer["abstained"]
    assert ana_id in [c["id"] for c in answer["citations"]]
    assert ana_id in [m["id"] for m in seen["recent"]["memories"]]
    assert seen["profile"] == {"fields": []}
    assert seen["forget"] == {"forgotten": 1}
    assert ana_id not in [r["id"] for r in seen["after"]["results"]]
    assert f"No memory has the id {ana_id!r}." in seen["forget_again"]
    assert "nothing to remember" in seen["empty"]
    assert "ISO 8601" in seen["bad_at"]
    assert "k must be between" in seen["bad_k"]
    assert "bike" in seen["still_up"]["results"][0]["text"]

    # Each call is in the events table by tool name and outcome, never with what was said.
    with sqlite3.connect(memex_home / "memex.db") as db:
        rows = [
            json.loads(d) for (d,) in db.execute("SELECT detail FROM events WHERE kind='mcp_call'")
        ]
    tools = [r["tool"] for r in rows]
    assert tools.count("remember") == 4 and tools.count("forget") == 2 and "ask" in tools
    assert [r["ok"] for r in rows if r["tool"] == "forget"] == [True, False]
    dumped = json.dumps(rows)
    assert "Lisbon" not in dumped and "Ana" not in dumped and "bike" not in dumped
    # MEMEX_NO_SERVICE=1 (the tests' default): the MCP process did the work, no service started
    assert {r["via"] for r in rows} == {"process"}
    assert not (memex_home / "service.sock").exists()


async def _locked_calls(home: Path) -> list[str]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = {k: v for k, v in os.environ.items() if k != "MEMEX_PASSPHRASE"}
    env["MEMEX_HOME"] = str(home)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "app.cli", "mcp"],
        env=env,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    out = []
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
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


def test_locked_vault_is_a_tool_error_not_a_crash(capsys, memex_home: Path, monkeypatch):
    """A real vault, enabled and then locked (the server process has no passphrase)."""
    from tests.cli_support import run

    monkeypatch.setenv("MEMEX_NO_SERVICE", "1")
    monkeypatch.setenv("MEMEX_PASSPHRASE", "correct horse battery staple")
    code, out = run(capsys, "--json", "vault", "enable")
    if code != 0:
        pytest.skip(f"the vault cannot be enabled here: {out.get('error')}")
    monkeypatch.delenv("MEMEX_PASSPHRASE")
    texts = anyio.run(_locked_calls, memex_home)
    assert texts[-1] == "up"
    assert all("memex is locked: run `memex vault unlock`" in t for t in texts[:-1]), texts
