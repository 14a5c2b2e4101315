"""The personal memory: SQLite records + FTS5, chromadb vectors, hybrid retrieval, profile.

Re-exports only; heavy libraries (chromadb, sentence_transformers) load on first use.
"""

from memory.errors import BadInput, MemoryStoreError, NotFound
from memory.store import MemoryStore
from memory.types import ImportProgress, ImportReport, Memory, ProfileField, SearchHit

__all__ = [
    "BadInput",
    "ImportProgress",
    "ImportReport",
    "Memory",
    "MemoryStoreError",
    "MemoryStore",
    "NotFound",
    "ProfileField",
    "SearchHit",
]
