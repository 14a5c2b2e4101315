"""The Backend protocol and the backend registry.

A backend turns chat messages into a stream of text pieces. Backends own native resources
and must be closed (`close()` or a `with` block). Heavy libraries are imported inside the
backend modules, never here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0
    # GBNF grammar the reply must match (constrained decoding); empty: free text. Backends
    # that cannot constrain raise BackendError rather than ignore it.
    grammar: str = ""


@dataclass(frozen=True)
class BackendConfig:
    """Plain data handed from the app layer to a backend."""

    model_path: str = ""  # empty: the backend's default model
    adapter_path: str = ""  # GGUF LoRA adapter file; empty: none
    n_ctx: int = 4096
    threads: int = 0  # 0: physical cores
    options: dict[str, str] = field(
        default_factory=dict
    )  # backend-specific (MoE budget, policy...)


@runtime_checkable
class Backend(Protocol):
    name: str

    def stream(self, messages: list[ChatMessage], params: GenerationParams) -> Iterator[str]:
        """Yield text pieces of the assistant's reply as they are generated."""
        ...

    def count_tokens(self, text: str) -> int: ...

    @property
    def context_length(self) -> int: ...

    def describe(self) -> dict[str, str]:
        """Model/adapter names for display (e.g. {"model": ..., "adapter": ...})."""
        ...

    def close(self) -> None: ...


class BackendError(Exception):
    """A model or adapter could not be loaded or run; the message is one sentence for users."""


# name -> "module:Class"; classes are imported only when chosen.
BACKENDS: dict[str, str] = {
    "llamacpp": "inference.llamacpp:LlamaCppBackend",
    "moe": "inference.moe.backend:MoEBackend",
    "openai": "inference.openai_backend:OpenAIBackend",
}


def create_backend(name: str, config: BackendConfig) -> Backend:
    target = BACKENDS.get(name)
    if target is None:
        raise BackendError(
            f"Unknown backend {name!r}; choose one of: {', '.join(sorted(BACKENDS))}."
        )
    module_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(config)  # type: ignore[no-any-return]
