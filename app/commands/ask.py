"""`memex ask` (one question, streamed to the terminal) and `memex chat` (interactive)."""

from __future__ import annotations

import sys
from typing import Any

import click

from app.commands._common import AppContext, memex_command
from app.errors import MemexError


def _memory_errors(exc: Exception) -> MemexError:
    return MemexError(str(exc), kind=getattr(exc, "kind", "error"))


def _human_sources(p: dict[str, Any]) -> str:
    from app.answer import Citation
    from app.chat import format_citation

    # The answer itself was streamed to the terminal already; add what it rests on.
    cites = [Citation(c["id"], c["text"], c["source"]) for c in p["citations"]]
    lines: list[str] = [p["_quote"]] if p.get("_quote") else []
    if cites:
        lines.append("\nSources:")
        lines += ["  " + format_citation(c) for c in cites]
    return "\n".join(lines)


@memex_command("ask", human=_human_sources)
@click.argument("question", nargs=-1, required=True)
def ask(obj: AppContext, question: tuple[str, ...]) -> dict[str, Any]:
    """Ask a question about your life; the answer cites the memories it rests on."""
    from app.chat import marked_quote, quote_line
    from memory import MemoryStoreError

    text = " ".join(question)
    try:
        stream = obj.runtime.ask_stream(text)
        if obj.json:
            return stream.result().to_json()
        for piece in stream:
            click.echo(piece, nl=False)
            sys.stdout.flush()
        click.echo()
        answer = stream.result()
    except MemoryStoreError as exc:
        raise _memory_errors(exc) from exc
    payload = answer.to_json()
    quote = marked_quote(answer, stream.prepared.texts)
    payload["_quote"] = quote_line(quote, stream.text, tty=sys.stdout.isatty())
    return payload


@memex_command(
    "chat",
    human=lambda p: (
        ""
        if p.get("_interactive")
        else "\n".join(f"you> {t['question']}\nmemex> {t['answer']}" for t in p["turns"])
    ),
)
def chat(obj: AppContext) -> dict[str, Any]:
    """Interactive offline chat: /remember TEXT, /forget ID, /sources, /quit.

    With --json, reads one message per line from stdin and prints one JSON object at the end.
    """
    from app.chat import ChatSession, quote_line
    from memory import MemoryStoreError

    session = ChatSession(obj.runtime)
    tty = sys.stdout.isatty()
    interactive = not obj.json and sys.stdin.isatty()
    if not obj.json:
        click.echo(
            "memex chat: ask about your memories. /remember TEXT, /forget ID, /sources, /quit",
            err=True,
        )
    outputs: list[str] = []
    try:
        while True:
            try:
                line = input("you> " if interactive else "")
            except EOFError:
                break
            line = line.strip()
            if not line:
                continue
            if session.is_command(line):
                res = session.command(line)
                outputs.append(res.text)
                if not obj.json:
                    click.echo(res.text)
                if res.quit:
                    break
                continue
            try:
                stream = session.send(line)
            except MemexError as exc:  # bad message (too long...): say so, keep chatting
                if obj.json:
                    outputs.append(exc.message)
                else:
                    click.echo(f"memex: {exc.message}", err=True)
                continue
            if not obj.json:
                click.echo("memex> ", nl=False)
            try:
                for piece in stream:
                    if not obj.json:
                        click.echo(piece, nl=False)
                        sys.stdout.flush()
            except KeyboardInterrupt:
                if not obj.json:
                    click.echo(" [stopped]", nl=False)
            session.record(stream)
            if not obj.json:
                click.echo()
                line = quote_line(session.last_quote, stream.text, tty=tty)
                if line:
                    click.echo(f"       {line}")
    except KeyboardInterrupt:
        pass
    except MemoryStoreError as exc:
        raise _memory_errors(exc) from exc
    finally:
        saved = session.close()
    payload: dict[str, Any] = {
        "turns": [t.to_json() for t in session.turns],
        "saved_memory": saved,
        "messages": outputs,
    }
    if not obj.json:
        payload["_interactive"] = True
    return payload
