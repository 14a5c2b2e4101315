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


class MoefyError(MoEError):
    """MoEfication (or the text it reads) failed."""

    kind = "moefy_failed"


class AdapterError(MoEError):
    """A LoRA adapter that cannot be read or does not fit the model being served."""

    kind = "bad_adapter"


class UnknownName(MoEError, ValueError):
    """A name that is not in its registry (policy, predictor, quant scheme, testbed, routing,
    compute path); the message lists the known ones. Also a ValueError, as before."""

    kind = "bad_input"


def unknown(what: str, name: str, known: object) -> UnknownName:
    """`UnknownName` with the one message shape every registry uses."""
    names = ", ".join(str(n) for n in known)  # type: ignore[attr-defined]
    return UnknownName(f"Unknown {what} {name!r}; choose one of: {names}.")
