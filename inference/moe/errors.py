"""Errors of the MoE engine: each carries one sentence a user can act on.

The app layer maps every `MoEError` to a `MemexError` with the same message and `kind`.
"""

from __future__ import annotations


class MoEError(Exception):
    """Base class: `str(exc)` is the user message, `kind` a short stable slug."""

    kind = "moe_error"


class UnsupportedModel(MoEError):
    kind = "unsupported_model"


class CheckpointError(MoEError):
    """Missing, misshapen or unreadable tensors in a checkpoint folder."""

    kind = "bad_checkpoint"


class BudgetError(MoEError):
    kind = "bad_budget"


class CorruptExpertFile(MoEError):
    kind = "corrupt_expert_file"


class ModelNotBuilt(MoEError):
    kind = "model_missing"
