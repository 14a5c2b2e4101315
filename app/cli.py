"""The `memex` command.

Subcommands live in `app/commands/*` and are imported only when used, so `memex --help`
stays fast and loads no heavy library (torch, chromadb, llama_cpp, PySide6, ...).
"""

from __future__ import annotations

if __name__ == "__main__":  # `python -m app.cli`: the thin client first, click only when needed
    # by name: this is the module __main__, not app.cli, which the entry imports when it must
    __import__("importlib").import_module("app.service.entry").main()
    raise SystemExit(0)

import importlib
import sys
from typing import Any

import click

from app.commands._common import AppContext, emit_error, json_flag
from app.errors import NotInstalledError
from app.service.route import route

# name -> ("module:attribute", one-line help shown by `memex --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "gui": ("app.commands.gui:gui", "Open the desktop app (or render it to a PNG)."),
    "remember": ("app.commands.memory:remember", "Store one memory."),
    "import": ("app.commands.memory:import_", "Import files or folders into memory."),
    "search": ("app.commands.memory:search", "Search memories (hybrid keyword + meaning)."),
    "forget": ("app.commands.memory:forget", "Forget memories everywhere they are stored."),
    "memories": ("app.commands.memory:memories", "List stored memories, newest first."),
    "profile": ("app.commands.profile:profile", "Show or edit profile fields used for autofill."),
    "ask": ("app.commands.ask:ask", "Ask a question about your life; answers cite memories."),
    "chat": ("app.commands.ask:chat", "Interactive offline chat in the terminal."),
    "inbox": ("app.commands.inbox:inbox", "Review profile values suggested from memories."),
    "serve": ("app.commands.serve:serve", "Local OpenAI-compatible API on 127.0.0.1."),
    "autofill": ("app.commands.bridge:autofill", "Classify and fill web form fields."),
    "bridge": ("app.commands.bridge:bridge", "Browser bridge: install, pair, permit, revoke."),
    "train": ("app.commands.train:train", "Train your personal LoRA adapter."),
    "eval": ("app.commands.train:eval_", "Personal-memory QA: base model vs. current adapter."),
    "adapters": ("app.commands.train:adapters", "List, activate or roll back adapters."),
    "moe": ("app.commands.moe:moe", "MoE expert-offloading engine tools."),
    "doctor": (
        "app.commands.doctor:doctor",
        "Check what is installed and the data folder's health.",
    ),
    "service": (
        "app.commands.service:service",
        "The resident service the CLI, GUI, bridge and API share.",
    ),
    "mcp": ("app.commands.mcp:mcp", "Stdio MCP server: memory tools for other AI apps."),
    "models": (
        "app.commands.models:models",
        "GGUF models on disk (bundled, Ollama, LM Studio, own).",
    ),
    "vault": (
        "app.commands.vault:vault",
        "Encryption at rest: enable, lock, unlock, change the passphrase.",
    ),
}

# Commands that run inside the resident service when it can run (warm models, one writer).
# Any command can be hosted there; the rest stay in-process because they own a terminal,
# a window or a browser port of their own, or manage the service itself.
SERVICE_COMMANDS: frozenset[str] = frozenset({
    "remember", "import", "search", "forget", "memories", "profile", "ask", "chat", "inbox",
    "autofill", "adapters", "serve", "train",
})
# Commands that change how the store is opened (encrypt it, lock it): a running service stops
# first, so it neither keeps a key nor holds the old file open; the next command starts a fresh one.
EXCLUSIVE_COMMANDS: frozenset[str] = frozenset({"vault"})


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        module_name, attr = entry[0].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(module_name.rsplit(".", 1)[0]):
                return _unavailable(name, entry[1])
            raise
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, help_) in COMMANDS.items()])


def _unavailable(name: str, help_: str) -> click.Command:
    @click.command(name=name, help=help_, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    @json_flag
    @click.pass_obj
    def stub(obj: AppContext, args: tuple[str, ...]) -> None:
        emit_error(obj, NotInstalledError(f"`memex {name}` is not available in this build yet."))

    return stub


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("--home", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Data folder for this command (default: $MEMEX_HOME or the user data dir).")
@click.option(
    "--json", "json_", is_flag=True, default=False, help="Print one JSON object on stdout."
)
@click.option("--passphrase-file", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Read the vault passphrase from this file (or set MEMEX_PASSPHRASE).")
@click.version_option(package_name="memex", prog_name="memex")
@click.pass_context
def cli(ctx: click.Context, home: str | None, json_: bool, passphrase_file: str | None) -> None:
    """memex: a personal AI memory that runs entirely on your computer."""
    ctx.obj = AppContext(home=home, json=json_, passphrase_file=passphrase_file)
    ctx.call_on_close(ctx.obj.close)
    if ctx.invoked_subcommand is None:
        ctx.invoke(LazyGroup.get_command(cli, ctx, "gui"))  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: a thin client of the service for SERVICE_COMMANDS (see
    app/service/route.py), else the command in this process."""
    args = list(sys.argv[1:] if argv is None else argv)
    code = route(args, SERVICE_COMMANDS, EXCLUSIVE_COMMANDS)
    if code is not None:
        sys.exit(code)
    from app.service.jobs import run_local  # import, train, moefy leave a row in the job journal

    return run_local(args, run_in_process)


def run_in_process(args: list[str]) -> Any:
    """Run `memex ARGS` in this process; click usage errors honour --json."""
    want_json = "--json" in args
    try:
        return cli.main(args=args, prog_name="memex", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        if want_json:
            import json

            click.echo(json.dumps({"error": exc.format_message(), "kind": "usage"}))
        else:
            exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
