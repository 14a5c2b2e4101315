"""Chat-formatted token sequences with completion-only labels, and deterministic batches.

The prompt is rendered with the model's own chat template (the one llama.cpp reads from the
GGUF), so training sees exactly what chat will send. Labels cover only the answer and its
end-of-turn token; everything else is -100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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

    @property
    def n_target(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


def chat_messages(question: str, system: str = "") -> list[dict[str, str]]:
    return [{"role": "system", "content": system or DEFAULT_SYSTEM}, {"role": "user", "content": question}]


def render_prompt(tokenizer: Any, question: str, system: str = "") -> str:
    return str(tokenizer.apply_chat_template(
        chat_messages(question, system), tokenize=False, add_generation_prompt=True,
    ))


def end_of_turn(tokenizer: Any) -> str:
    return str(tokenizer.eos_token or "")


def encode(tokenizer: Any, ex: Example, seq_len: int, system: str = "") -> Encoded:
    prompt_ids = tokenizer(render_prompt(tokenizer, ex.question, system), add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(ex.answer + end_of_turn(tokenizer), add_special_tokens=False)["input_ids"]
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


def collate(items: Sequence[Encoded], pad_id: int) -> dict[str, Any]:
    """Right-pad to the longest item: padded positions come after every real token."""
    import torch

    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)  # (B, T)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(items), width), dtype=torch.long)  # (B, T)
    for i, e in enumerate(items):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
