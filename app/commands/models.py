"""`memex models list|use NAME|add PATH`: GGUF models already on disk (bundled, Ollama, LM Studio,
MEMEX_HOME/models, added by path). Files are used where they lie, never copied."""

from __future__ import annotations

from typing import Any

import click

from app.commands._common import AppContext, memex_command
from app.model_choice import add, choose, listing


@click.group(name="models")
def models() -> None:
    """GGUF models on this computer: list them, choose one, or add a file by path."""


def _human_list(p: dict[str, Any]) -> str:
    if not p["models"]:
        return "No models found."
    lines = []
    for m in p["models"]:
        mark = "*" if m["active"] else " "
        if not m["usable"]:
            lines.append(f"{mark} {m['name']:<44} unusable: {m['problem']}")
            continue
        lines.append(
            f"{mark} {m['name']:<44} {m.get('architecture', ''):<9} {m.get('size', ''):>6} "
            f"{m.get('quantisation', ''):<8} ctx {m.get('context_length', 0):<7} "
            f"needs {m.get('ram', '?')} RAM{'' if m.get('chat_template') else ', no chat template'}"
        )
    if p["backend"] != "llamacpp":
        lines.append(
            f"(answers come from the {p['backend']} backend now; `memex models use` switches back)"
        )
    return "\n".join(lines)


@memex_command("list", group=models, human=_human_list)
def list_(obj: AppContext) -> dict[str, Any]:
    """Every GGUF model found, with what it needs to run; * marks the one in use."""
    return listing(obj.settings)


@memex_command(
    "use", group=models, human=lambda p: f"Now answering with {p['name']} ({p['path']})."
)
@click.argument("name")
def use(obj: AppContext, name: str) -> dict[str, Any]:
    """Answer, train and autofill with NAME (from `memex models list`)."""
    return choose(obj.settings, name)


@memex_command(
    "add",
    group=models,
    human=lambda p: (
        f"Added {p['name']} ({p['path']}); "
        + (
            "it is in use now."
            if p["active"]
            else f"`memex models use {p['name']}` switches to it."
        )
    ),
)
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option("--use", "use_", is_flag=True, help="Also switch to it.")
def add_cmd(obj: AppContext, path: str, use_: bool) -> dict[str, Any]:
    """Add a GGUF file by path (it stays where it is)."""
    return add(obj.settings, path, use=use_)
