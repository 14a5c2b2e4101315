"""A small batch embeds on one torch thread: the same vectors, and the thread count comes back."""

from __future__ import annotations

import math

import torch

from memory.embeddings import SMALL_BATCH, Embedder


def test_small_batches_embed_alike_and_restore_the_thread_count() -> None:
    embedder = Embedder()
    texts = [f"My bike is a green Gazelle, note {i}." for i in range(SMALL_BATCH + 2)]
    before = torch.get_num_threads()
    alone = embedder.embed_one(texts[0])
    assert torch.get_num_threads() == before
    batched = embedder.embed(texts)[0]  # a large batch keeps every thread
    assert torch.get_num_threads() == before
    assert len(alone) == len(batched)
    assert math.isclose(sum(a * b for a, b in zip(alone, batched)), 1.0, abs_tol=1e-4)
