"""Errors raised by the memory package; messages are one sentence meant for users."""

from __future__ import annotations


class MemoryError_(Exception):
    kind = "memory_error"


class NotFound(MemoryError_):
    kind = "not_found"


class BadInput(MemoryError_):
    kind = "bad_input"
