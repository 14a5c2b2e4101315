"""Shared plumbing for subcommands: the app context, --json, output and error handling.

A command function returns a dict (the JSON object printed with --json) and may give a
`human` formatter for terminal output. `MemexError` becomes a one-sentence message and a
non-zero exit; it never shows a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

import click

from app.errors import MemexError, as_memex_error

if TYPE_CHECKING:
    from app.runtime import Runtime
    from app.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

# Set by the resident service around each command it runs (app/service/runner.py): commands
# then share its warm Runtime instead of opening the store and loading the models again.
HOSTED_RUNTIME: ContextVar[Callable[[], Runtime] | None] = ContextVar(
    "memex_hosted_runtime", default=None
)


class AppContext:
    """Per-invocation state: where the data lives, output mode, and a lazy Runtime."""

    def __init__(self, home: str | None, json: bool, passphrase_file: str | None = None):
        self.home = home
        self.json = json
        self.passphrase_file = passphrase_file  # `memex --passphrase-file F`: unlocks the vault
        self._settings: Settings | None = None
        self._runtime: Runtime | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from app.settings import load_settings

            extra = {"passphrase_file": self.passphrase_file} if self.passphrase_file else {}
            self._settings = load_settings(home=self.home, **extra)
        return self._settings

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            hosted = HOSTED_RUNTIME.get()
            if hosted is not None:  # inside the service: the warm shared Runtime, never closed here
                self._runtime = hosted()
                self._borrowed = True
                return self._runtime
            from app.runtime import Runtime

            self._runtime = Runtime(self.settings)
        return self._runtime

    def close(self) -> None:
        if self._runtime is not None:
            if not getattr(self, "_borrowed", False):
                self._runtime.close()
            self._runtime = None


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        obj = ctx.find_object(AppContext)
        if obj is not None:
            obj.json = True
    return value


def json_flag(func: F) -> F:
    """Add `--json` to a command (also accepted before the command name)."""
    return click.option(
        "--json",
        "json_",
        is_flag=True,
        default=False,
        expose_value=False,
        is_eager=True,
        callback=_set_json,
        help="Print one JSON object on stdout.",
    )(func)


def emit(
    obj: AppContext, payload: dict[str, Any], human: Callable[[dict[str, Any]], str] | None = None
) -> None:
    if obj.json:
        click.echo(json.dumps(payload, ensure_ascii=False, default=str))
        return
    text = human(payload) if human else _default_human(payload)
    if text:
        click.echo(text)


def emit_error(obj: AppContext, exc: MemexError) -> None:
    if obj.json:
        click.echo(json.dumps({"error": exc.message, "kind": exc.kind}, ensure_ascii=False))
    else:
        click.echo(f"memex: {exc.message}", err=True)
    sys.exit(exc.exit_code)


def _default_human(payload: dict[str, Any]) -> str:
    lines = []
    for key, value in payload.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False, indent=2, default=str)
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def memex_command(
    name: str | None = None,
    *,
    group: click.Group | None = None,
    human: Callable[[dict[str, Any]], str] | None = None,
    **command_kwargs: Any,
) -> Callable[[Callable[..., dict[str, Any] | None]], click.Command]:
    """Declare a subcommand: adds --json, passes the AppContext first, prints the result."""

    def decorate(func: Callable[..., dict[str, Any] | None]) -> click.Command:
        @functools.wraps(func)
        @click.pass_obj
        def wrapper(obj: AppContext, *args: Any, **kwargs: Any) -> None:
            try:
                payload = func(obj, *args, **kwargs)
            except MemexError as exc:
                emit_error(obj, exc)
                return
            except Exception as exc:
                # the core packages' own errors (memory, inference, finetune, bridge), in one place
                translated = as_memex_error(exc)
                if translated is None:
                    raise
                emit_error(obj, translated)
                return
            except KeyboardInterrupt:
                emit_error(obj, MemexError("Interrupted.", kind="interrupted", exit_code=130))
                return
            if payload is not None:
                code = int(payload.pop("_exit", 0) or 0)
                emit(obj, payload, human)
                if code:
                    sys.exit(code)

        maker = group.command if group is not None else click.command
        return maker(name=name, **command_kwargs)(json_flag(wrapper))

    return decorate
