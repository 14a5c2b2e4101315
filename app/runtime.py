"""Runtime: the composition root. Composes memory + inference + finetune for every front-end.

Only this module wires the three core packages together; what crosses between them is
plain data (dataclasses, file paths, callables).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from app.settings import Settings

if TYPE_CHECKING:
    from memory import ImportProgress, ImportReport, Memory, MemoryStore

# Called with the memories that were just stored (e.g. to propose profile values).
NewMemoriesHook = Callable[["Runtime", "Sequence[Memory]"], None]


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._memory: MemoryStore | None = None
        self.on_new_memories: list[NewMemoriesHook] = []

    @property
    def memory(self) -> "MemoryStore":
        if self._memory is None:
            from memory import MemoryStore

            self.settings.ensure_home()
            self._memory = MemoryStore(
                self.settings.home,
                embed_model=self.settings.embed_model,
                embed_batch=self.settings.embed_batch,
                chroma_url=self.settings.chroma_url,
                chunk_chars=self.settings.chunk_chars,
            )
        return self._memory

    # memory writes go through here so hooks (the profile inbox) see every new memory ---------
    def remember(self, text: str, *, source: str | None = None, at: datetime | None = None,
                 kind: str = "note") -> tuple["Memory", bool]:
        mem, created = self.memory.remember(text, source=source, at=at, kind=kind)
        if created:
            self._notify([mem])
        return mem, created

    def import_paths(self, paths: Sequence[Path], *,
                     progress: Callable[["ImportProgress"], None] | None = None,
                     cancel: Callable[[], bool] | None = None) -> "ImportReport":
        report = self.memory.import_paths(paths, progress=progress, cancel=cancel)
        if report.memory_ids and self.on_new_memories:
            mems = [m for m in (self.memory.get(i) for i in report.memory_ids) if m is not None]
            self._notify(mems)
        return report

    def forget(self, ids: Iterable[str]) -> int:
        return self.memory.forget(ids)

    def forget_source(self, source: str) -> int:
        return self.memory.forget_source(source)

    def _notify(self, mems: "Sequence[Memory]") -> None:
        for hook in list(self.on_new_memories):
            hook(self, mems)

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()
            self._memory = None
