"""The vector store: chromadb (embedded PersistentClient, or a server URL), ids = chunk ids."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

COLLECTION = "memex_chunks"


class VectorStore:
    """`ids_only`: with the vault on, chroma keeps chunk ids and vectors and nothing else
    (no documents, no metadata); search already reads every text from SQLite."""

    def __init__(self, path: Path, url: str = "", *, ids_only: bool = False) -> None:
        self.path = path
        self.url = url
        self.ids_only = ids_only
        self._client: Any = None
        self._collection: Any = None
        # threads of one process (the resident service) may open it at once; chromadb's own
        # client registry is not safe against two PersistentClient() calls racing
        self._open_lock = threading.Lock()

    def _coll(self) -> Any:
        if self._collection is not None:
            return self._collection
        with self._open_lock:
            return self._open()

    def _open(self) -> Any:
        if self._collection is None:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
            if self.url:
                from urllib.parse import urlparse

                u = urlparse(self.url)
                self._client = chromadb.HttpClient(
                    host=u.hostname or "127.0.0.1",
                    port=u.port or 8000,
                    ssl=u.scheme == "https",
                    settings=chroma_settings,
                )
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(
                    path=str(self.path), settings=chroma_settings
                )
            self._collection = self._client.get_or_create_collection(
                COLLECTION,
                metadata={"hnsw:space": "cosine"},
                embedding_function=None,
            )
        return self._collection

    def upsert(
        self, ids: Sequence[str], embeddings: Sequence[Sequence[float]], memory_ids: Sequence[str]
    ) -> None:
        coll = self._coll()
        step = 4000  # stay under chromadb's max batch size
        for i in range(0, len(ids), step):
            coll.upsert(
                ids=list(ids[i : i + step]),
                embeddings=[list(e) for e in embeddings[i : i + step]],
                metadatas=None
                if self.ids_only
                else [{"memory_id": m} for m in memory_ids[i : i + step]],
            )

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        coll = self._coll()
        for i in range(0, len(ids), 4000):
            coll.delete(ids=list(ids[i : i + 4000]))

    def query(self, embedding: Sequence[float], n: int) -> list[tuple[str, float]]:
        """Nearest chunk ids with cosine similarity (1 - distance)."""
        # chromadb clamps n_results to the collection's size (and answers an empty one with no
        # ids), so no count() first: that cost as much as the nearest-neighbour query itself.
        res = self._coll().query(
            query_embeddings=[list(embedding)], n_results=max(1, n), include=["distances"]
        )
        ids = res["ids"][0] if res["ids"] else []
        dists = res["distances"][0] if res["distances"] else []
        return [(i, 1.0 - float(d)) for i, d in zip(ids, dists)]

    def embeddings(self, ids: Sequence[str]) -> dict[str, list[float]]:
        """Stored vectors by id (those the store has)."""
        if not ids:
            return {}
        res = self._coll().get(ids=list(ids), include=["embeddings"])
        return {i: list(map(float, e)) for i, e in zip(res["ids"], res["embeddings"])}

    def all_ids(self) -> set[str]:
        coll = self._coll()
        out: set[str] = set()
        offset, page = 0, 10000
        while True:
            got = coll.get(include=[], limit=page, offset=offset)["ids"]
            out.update(got)
            if len(got) < page:
                return out
            offset += page

    def count(self) -> int:
        return int(self._coll().count())

    def batches(self, size: int = 2000) -> Iterator[tuple[list[str], list[list[float]], list[str]]]:
        """Every stored vector as (chunk ids, embeddings, memory ids), `size` at a time."""
        coll, offset = self._coll(), 0
        while True:
            got = coll.get(include=["embeddings", "metadatas"], limit=size, offset=offset)
            ids = list(got["ids"])
            if not ids:
                return
            owners = [
                str((m or {}).get("memory_id", i.rpartition(":")[0]))
                for i, m in zip(ids, got["metadatas"])
            ]
            yield ids, [list(map(float, e)) for e in got["embeddings"]], owners
            if len(ids) < size:
                return
            offset += size

    def drop(self) -> None:
        """Remove the whole collection (after its vectors moved elsewhere)."""
        self._coll()
        self._client.delete_collection(COLLECTION)
        self._collection = None

    def close(self) -> None:
        self._collection = None
        self._client = None


def move_vectors(src: VectorStore, dst: VectorStore) -> int:
    """Copy every vector from `src` to `dst`, check `dst` holds them all, then empty `src`.

    Nothing is removed from `src` unless the copy is complete, so an interrupted move can be
    run again (upserts are idempotent)."""
    moved = 0
    want: set[str] = set()
    for ids, embs, owners in src.batches():
        dst.upsert(ids, embs, owners)
        want.update(ids)
        moved += len(ids)
    missing = want - dst.all_ids()
    if missing:
        from memory.errors import MemoryStoreError

        raise MemoryStoreError(
            f"{len(missing)} vectors did not arrive at the destination; "
            "the source was left as it was, so run the move again."
        )
    src.drop()
    return moved
