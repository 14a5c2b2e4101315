"""User-facing errors: one clear sentence and a machine-readable kind."""

from __future__ import annotations


class MemexError(Exception):
    """An error caused by user input or environment, shown without a traceback.

    `kind` is a short stable slug (e.g. "not_found", "bad_input") used in JSON output.
    `exit_code` is the process exit status the CLI uses.
    """

    kind = "error"
    exit_code = 1

    def __init__(self, message: str, *, kind: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.kind


class UsageError(MemexError):
    kind = "usage"
    exit_code = 2


class NotInstalledError(MemexError):
    """An optional extra (gui, train, bridge) is missing."""

    kind = "not_installed"
    exit_code = 3


# The core packages' error bases and how they reach the user: (kind when the error has none,
# exit status). Matched by module and class name along the MRO, so translating imports
# nothing (memory/, inference/ and finetune/ never import app, and may not be loaded at all).
FOREIGN_ERRORS: dict[str, tuple[str, int]] = {
    "memory.errors:MemoryStoreError": ("memory_error", 1),
    "inference.base:BackendError": ("model", 1),
    "finetune.errors:FinetuneError": ("finetune_error", 1),
    "app.bridge.service:BridgeFault": ("bridge", 1),
}


def as_memex_error(exc: BaseException) -> MemexError | None:
    """The user-facing form of `exc`, or None for a bug (which should keep its traceback)."""
    if isinstance(exc, MemexError):
        return exc
    for cls in type(exc).__mro__:
        entry = FOREIGN_ERRORS.get(f"{cls.__module__}:{cls.__qualname__}")
        if entry is not None:
            kind = getattr(exc, "kind", None)
            message = str(exc.args[0]) if exc.args else str(kind or entry[0])
            return MemexError(
                message,
                kind=kind if isinstance(kind, str) and kind else entry[0],
                exit_code=entry[1],
            )
    return None


def error_payload(exc: MemexError) -> dict[str, str]:
    """The `{"error", "kind"}` object every front-end shows for a failed request."""
    return {"error": exc.message, "kind": exc.kind}
