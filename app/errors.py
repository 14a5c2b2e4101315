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
