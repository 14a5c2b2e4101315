"""Chat-formatted token sequences with completion-only labels, and deterministic batches.

The prompt is rendered with the model's own chat template (the one llama.cpp reads from the
GGUF), so training sees exactly what chat will send. Labels cover only the answer and its
end-of-turn token; everything else is -100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from finetune.types import Example

DEFAULT_SYSTEM = (
    "You are memex, the user's personal memory. Answer from what you remember about the user; "
    "if you have no memory of it, say so."
)
IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    starts: tuple[int, ...] = ()  # example starts inside a packed row

    @property
    def n_target(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


def chat_messages(question: str, system: str = "") -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system or DEFAULT_SYSTEM},
        {"role": "user", "content": question},
    ]


def render_prompt(tokenizer: Any, question: str, system: str = "") -> str:
    return str(
        tokenizer.apply_chat_template(
            chat_messages(question, system),
            tokenize=False,
            add_generation_prompt=True,
        )
    )


def end_of_turn(tokenizer: Any) -> str:
    return str(tokenizer.eos_token or "")


def encode(tokenizer: Any, ex: Example, seq_len: int, system: str = "") -> Encoded:
    prompt_ids = tokenizer(render_prompt(tokenizer, ex.question, system), add_special_tokens=False)[
        "input_ids"
    ]
    answer_ids = tokenizer(ex.answer + end_of_turn(tokenizer), add_special_tokens=False)[
        "input_ids"
    ]
    ids = (list(prompt_ids) + list(answer_ids))[:seq_len]
    labels = ([IGNORE] * len(prompt_ids) + list(answer_ids))[:seq_len]
    return Encoded(tuple(ids), tuple(labels))


def batch_indices(step: int, batch: int, n: int, seed: int) -> list[int]:
    """Example indices for one optimizer step; a fresh seeded permutation per epoch.

    A pure function of the step, so a resumed run sees exactly the batches it would have.
    """
    import torch

    out: list[int] = []
    perms: dict[int, list[int]] = {}
    for j in range(batch):
        g = step * batch + j
        epoch, pos = divmod(g, n)
        if epoch not in perms:
            gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
            perms[epoch] = torch.randperm(n, generator=gen).tolist()
        out.append(perms[epoch][pos])
    return out


def pack(items: Sequence[Encoded], seq_len: int) -> list[Encoded]:
    """Greedily concatenate examples into rows of at most seq_len tokens (order kept).

    Each packed row remembers where its examples start (`starts`), so attention stays
    within an example and positions restart at 0, exactly as if trained one by one.
    """
    rows: list[Encoded] = []
    ids: list[int] = []
    labels: list[int] = []
    starts: list[int] = []
    for e in items:
        if ids and len(ids) + len(e.input_ids) > seq_len:
            rows.append(Encoded(tuple(ids), tuple(labels), tuple(starts)))
            ids, labels, starts = [], [], []
        starts.append(len(ids))
        ids.extend(e.input_ids)
        labels.extend(e.labels)
    if ids:
        rows.append(Encoded(tuple(ids), tuple(labels), tuple(starts)))
    return rows


def collate(items: Sequence[Encoded], pad_id: int) -> dict[str, Any]:
    """Right-pad to the longest row; a block-diagonal causal mask keeps packed examples apart."""
    import torch

    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)  # (B, T)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)  # (B, T)
    positions = torch.zeros((len(items), width), dtype=torch.long)  # (B, T)
    segment = torch.full((len(items), width), -1, dtype=torch.long)  # (B, T); -1 = padding
    for i, e in enumerate(items):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        bounds = list(e.starts or (0,)) + [n]
        for s, (a, b) in enumerate(pairwise(bounds)):
            positions[i, a:b] = torch.arange(b - a)
            segment[i, a:b] = s
    causal = torch.ones(width, width, dtype=torch.bool).tril()  # (T, T)
    same = segment[:, :, None] == segment[:, None, :]  # (B, T, T)
    real = (segment >= 0)[:, None, :]  # (B, 1, T) keys that are not padding
    mask = (same & causal & real) | torch.eye(
        width, dtype=torch.bool
    )  # padding rows see themselves
    return {
        "input_ids": ids,
        "labels": labels,
        "position_ids": positions,
        "attention_mask": mask[:, None],
        "n_real": int((segment >= 0).sum()),
    }  # mask: (B, 1, T, T)
