"""Errors raised by the memory package; messages are one sentence meant for users."""

from __future__ import annotations


class MemoryStoreError(Exception):
    """Base of every error the memory package raises on purpose (named so it never reads as the
    builtin MemoryError, which means the interpreter ran out of memory)."""

    kind = "memory_error"


class NotFound(MemoryStoreError):
    kind = "not_found"


class BadInput(MemoryStoreError):
    kind = "bad_input"
