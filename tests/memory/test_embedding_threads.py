"""The bundled encoder runs in numpy and gives sentence-transformers' vectors; small batches
run on one thread and leave the thread settings as they were."""

from __future__ import annotations

import math

import numpy as np
import torch

from memory.embeddings import SMALL_BATCH, Embedder, bundled_model_dir
from memory.minilm import MiniLM, load

TEXTS = [
    "hello",
    "  My dentist is Dr. Alvarez; the next check-up is in March.  ",
    "Ünïcödé café 東京 😀 and a tab\there",
    "long " * 400,  # past the 256-token window: truncated the same way
    "",
    *(f"note {i} about walks and herons " * (i % 5 + 1) for i in range(20)),
]


def test_numpy_encoder_matches_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    folder = bundled_model_dir()
    fast = load(folder)
    assert isinstance(fast, MiniLM)
    ours = fast.encode(TEXTS, batch_size=8)
    reference = SentenceTransformer(str(folder), device="cpu").encode(
        TEXTS, batch_size=8, normalize_embeddings=True, convert_to_numpy=True
    )
    assert ours.shape == reference.shape == (len(TEXTS), fast.get_sentence_embedding_dimension())
    assert float(np.abs(ours - reference).max()) < 1e-5


def test_other_model_folders_are_not_taken_for_the_bundled_one(tmp_path) -> None:
    assert load(tmp_path) is None  # no modules.json: sentence-transformers loads it


def test_small_batches_embed_alike_and_restore_the_thread_count() -> None:
    embedder = Embedder()
    texts = [f"My bike is a green Gazelle, note {i}." for i in range(SMALL_BATCH + 2)]
    before = torch.get_num_threads()
    alone = embedder.embed_one(texts[0])
    batched = embedder.embed(texts)[0]  # a large batch keeps every thread
    assert torch.get_num_threads() == before
    assert len(alone) == len(batched) == embedder.dim
    assert math.isclose(sum(a * b for a, b in zip(alone, batched)), 1.0, abs_tol=1e-5)
