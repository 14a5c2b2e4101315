"""The text MoEfication fits on and routing traces read: assets/moe-text/{train,eval}.txt.

Shared by moefy.py (fitting, held-out perplexity) and routing_trace.py (traces of held-out
text), which own neither: the splits come from different sources so held-out figures never
see fitting text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inference.moe.errors import MoefyError

TEXT_DIR = Path(__file__).resolve().parents[3] / "assets" / "moe-text"


def text_file(split: str) -> Path:
    """assets/moe-text/{train,eval}.txt: fitting and held-out text, from different sources."""
    path = TEXT_DIR / f"{split}.txt"
    if not path.is_file():
        raise MoefyError(
            f"The MoEfication text {path} is missing; reinstall memex from its source tree."
        )
    return path


def token_batch(tokenizer: Any, split: str, n_tokens: int, seq_len: int) -> Any:
    """The first n_tokens of a text split as a [B, seq_len] LongTensor."""
    import torch

    ids = tokenizer(text_file(split).read_text(encoding="utf-8"))["input_ids"]
    n_seq = min(n_tokens, len(ids)) // seq_len
    if n_seq < 1:
        raise MoefyError(f"The {split} text has fewer than {seq_len} tokens.")
    return torch.tensor(ids[: n_seq * seq_len], dtype=torch.long).view(n_seq, seq_len)
