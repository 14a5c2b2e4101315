"""A chat session over memory: conversation context, slash commands, optional saving.

Front-end neutral: the terminal (`memex chat`) and the GUI drive the same session. Each user
message is answered through `Runtime.ask_stream` with the recent turns as history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from app.answer import Answer, AnswerStream, Citation
from app.errors import MemexError
from inference.base import ChatMessage

if TYPE_CHECKING:
    from app.runtime import Runtime

MAX_HISTORY_MESSAGES = 20  # older turns drop out first; packing trims further to fit the context


@dataclass
class CommandResult:
    text: str
    quit: bool = False


@dataclass
class Turn:
    question: str
    answer: str
    citations: list[Citation]

    def to_json(self) -> dict[str, object]:
        return {"question": self.question, "answer": self.answer,
                "citations": [c.to_json() for c in self.citations]}


@dataclass
class ChatSession:
    runtime: Runtime
    history: list[ChatMessage] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    saved_id: str | None = None

    # -- messages -------------------------------------------------------------------
    def send(self, text: str) -> AnswerStream:
        """Answer one message; iterate the stream for pieces, then pass it to `record`."""
        return self.runtime.ask_stream(text, history=self.history[-MAX_HISTORY_MESSAGES:])

    def record(self, stream: AnswerStream) -> Answer:
        """Finish a turn (also after an interrupted stream): keep it in the conversation."""
        answer = stream.result()
        question = stream.prepared.question
        self.history += [ChatMessage("user", question), ChatMessage("assistant", answer.answer)]
        self.turns.append(Turn(question, answer.answer, answer.citations))
        return answer

    @property
    def last_citations(self) -> list[Citation]:
        return self.turns[-1].citations if self.turns else []

    # -- slash commands -------------------------------------------------------------
    def is_command(self, line: str) -> bool:
        return line.startswith("/")

    def command(self, line: str) -> CommandResult:
        name, _, arg = line[1:].strip().partition(" ")
        handler = self.COMMANDS.get(name.lower())
        if handler is None:
            return CommandResult(f"Unknown command /{name}; try {', '.join('/' + c for c in self.COMMANDS)}.")
        return handler(self, arg.strip())

    def _remember(self, arg: str) -> CommandResult:
        if not arg:
            return CommandResult("Usage: /remember TEXT")
        mem, created = self.runtime.remember(arg, source="chat", kind="note")
        return CommandResult(f"Remembered [{mem.id}]." if created else f"Already remembered as [{mem.id}].")

    def _forget(self, arg: str) -> CommandResult:
        ids = arg.split()
        if not ids:
            return CommandResult("Usage: /forget ID")
        from memory import NotFound

        try:
            n = self.runtime.forget(ids)
        except NotFound as exc:
            return CommandResult(str(exc))
        return CommandResult(f"Forgot {n} memor{'y' if n == 1 else 'ies'}.")

    def _sources(self, _arg: str) -> CommandResult:
        cites = self.last_citations
        if not cites:
            return CommandResult("The last answer cited no memories.")
        return CommandResult("\n".join(format_citation(c) for c in cites))

    def _quit(self, _arg: str) -> CommandResult:
        return CommandResult("Bye.", quit=True)

    def _help(self, _arg: str) -> CommandResult:
        return CommandResult("/remember TEXT  store a memory\n/forget ID      forget a memory\n"
                             "/sources        memories the last answer used\n/quit           leave")

    COMMANDS: ClassVar[dict[str, Callable[[ChatSession, str], CommandResult]]] = {
        "remember": _remember, "forget": _forget, "sources": _sources, "quit": _quit, "exit": _quit,
        "help": _help,
    }

    # -- end ------------------------------------------------------------------------
    def transcript(self) -> str:
        return "\n".join(f"Me: {t.question}\nmemex: {t.answer}" for t in self.turns)

    def close(self) -> str | None:
        """Store the conversation as a chat memory when settings.save_chats is on."""
        if self.saved_id is None and self.turns and self.runtime.settings.save_chats:
            try:
                mem, _ = self.runtime.remember(self.transcript(), source="chat", kind="chat")
            except MemexError:
                raise
            except Exception as exc:  # memory errors: one sentence, the chat itself is not lost
                raise MemexError(f"The conversation could not be saved ({exc}).", kind="memory_error") from exc
            self.saved_id = mem.id
        return self.saved_id


def format_citation(c: Citation) -> str:
    text = " ".join(c.text.split())
    source = f"  ({c.source})" if c.source else ""
    return f"[{c.id}] {text[:160]}{'…' if len(text) > 160 else ''}{source}"
