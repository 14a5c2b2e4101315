"""Errors raised by finetune for bad input or environment; one clear sentence each."""

from __future__ import annotations


class FinetuneError(Exception):
    """A training, export or eval problem the user can act on.

    `kind` is a short stable slug the app layer maps to its own error type.
    """

    def __init__(self, message: str, *, kind: str = "finetune_error") -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.kind


class DatasetError(FinetuneError):
    def __init__(self, message: str) -> None:
        super().__init__(message, kind="bad_dataset")


class ModelLoadError(FinetuneError):
    def __init__(self, message: str) -> None:
        super().__init__(message, kind="bad_model")


class DiskFullError(FinetuneError):
    def __init__(self, message: str) -> None:
        super().__init__(message, kind="disk_full")


class ExportError(FinetuneError):
    def __init__(self, message: str) -> None:
        super().__init__(message, kind="export_failed")
