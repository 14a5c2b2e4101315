"""A chat session over memory: conversation context, slash commands, optional saving.

Front-end neutral: the terminal (`memex chat`) and the GUI drive the same session. Each user
message is answered through `Runtime.ask_stream` with the recent turns as history.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


@dataclass(frozen=True)
class MarkedQuote:
    """The supporting quote cut around the evidence span the answer rests on.

    `before + marked + after` is the quote as `Answer.quote` says it; `marked` is empty when
    the span could not be found in it (a quote shortened past the span)."""

    before: str
    marked: str
    after: str

    @property
    def text(self) -> str:
        return self.before + self.marked + self.after

    def render(
        self, open_mark: str, close_mark: str, escape: Callable[[str], str] = lambda s: s
    ) -> str:
        """The quote with the span between the marks; `escape` applies to text, not marks."""
        if not self.marked:
            return escape(self.text)
        return (
            escape(self.before) + open_mark + escape(self.marked) + close_mark + escape(self.after)
        )


def marked_quote(answer: Answer, texts: Mapping[str, str] | None = None) -> MarkedQuote | None:
    """The answer's supporting quote with its first evidence span marked; None without a quote.

    `texts` maps memory ids to full texts (AnswerStream.prepared.texts); the cited memory's
    text stands in for one it lacks. The span is looked up inside the quotation marks, the way
    the quote spells it (whitespace collapsed), so the date frame is never marked; a quote cut
    short inside the span marks the part it still shows."""
    if answer.abstained or not answer.quote:
        return None
    quote = answer.quote
    if not answer.evidence:
        return MarkedQuote(quote, "", "")
    span = answer.evidence[0]
    full = (texts or {}).get(span.id) or next(
        (c.text for c in answer.citations if c.id == span.id), ""
    )
    words = full[span.start : span.end].split()
    inside = quote.find("\u201c") + 1
    for n in range(len(words), (len(words) + 1) // 2 - 1, -1):
        piece = " ".join(words[:n]).strip(" .,;:!?")
        at = quote.find(piece, inside) if piece else -1
        if at >= 0:
            return MarkedQuote(quote[:at], quote[at : at + len(piece)], quote[at + len(piece) :])
    return MarkedQuote(quote, "", "")


@dataclass
class Turn:
    question: str
    answer: str
    citations: list[Citation]
    quote: MarkedQuote | None = None  # the supporting sentence, its evidence span marked

    def to_json(self) -> dict[str, object]:
        return {
            "question": self.question,
            "answer": self.answer,
            "citations": [c.to_json() for c in self.citations],
        }


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
        self.turns.append(
            Turn(
                question,
                answer.answer,
                answer.citations,
                marked_quote(answer, stream.prepared.texts),
            )
        )
        return answer

    @property
    def last_quote(self) -> MarkedQuote | None:
        return self.turns[-1].quote if self.turns else None

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
            return CommandResult(
                f"Unknown command /{name}; try {', '.join('/' + c for c in self.COMMANDS)}."
            )
        return handler(self, arg.strip())

    def _remember(self, arg: str) -> CommandResult:
        if not arg:
            return CommandResult("Usage: /remember TEXT")
        mem, created = self.runtime.remember(arg, source="chat", kind="note")
        return CommandResult(
            f"Remembered [{mem.id}]." if created else f"Already remembered as [{mem.id}]."
        )

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
        return CommandResult(
            "/remember TEXT  store a memory\n/forget ID      forget a memory\n"
            "/sources        memories the last answer used\n/quit           leave"
        )

    COMMANDS: ClassVar[dict[str, Callable[[ChatSession, str], CommandResult]]] = {
        "remember": _remember,
        "forget": _forget,
        "sources": _sources,
        "quit": _quit,
        "exit": _quit,
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
                raise MemexError(
                    f"The conversation could not be saved ({exc}).", kind="memory_error"
                ) from exc
            self.saved_id = mem.id
        return self.saved_id


def quote_line(quote: MarkedQuote | None, shown: str, *, tty: bool) -> str:
    """The terminal line under an answer: the quote, its evidence span in bold on a terminal
    and between «» otherwise; empty without a quote, or when `shown` (what was printed as
    the answer) is the quote already (the dated-quote fallback streams the quote itself)."""
    if quote is None or " ".join(shown.split()) == " ".join(quote.text.split()):
        return ""
    return quote.render("\x1b[1m", "\x1b[0m") if tty else quote.render("\u00ab", "\u00bb")


def format_citation(c: Citation) -> str:
    text = " ".join(c.text.split())
    source = f"  ({c.source})" if c.source else ""
    return f"[{c.id}] {text[:160]}{'…' if len(text) > 160 else ''}{source}"
