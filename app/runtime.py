"""Runtime: the composition root. Composes memory + inference + finetune for every front-end.

Only this module wires the three core packages together; what crosses between them is
plain data (dataclasses, file paths, callables).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from app.adapters import Served, served_model
from app.settings import Settings

if TYPE_CHECKING:
    from app.answer import Answer, AnswerStream
    from inference.base import Backend, ChatMessage, GenerationParams
    from memory import ImportProgress, ImportReport, Memory, MemoryStore

# Called with the memories that were just stored (e.g. to propose profile values).
NewMemoriesHook = Callable[["Runtime", "Sequence[Memory]"], None]


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._memory: MemoryStore | None = None
        self._backend: Backend | None = None
        self._backend_served: Served | None = None  # what the loaded backend serves
        self._backend_lock = threading.Lock()  # server threads must not load the model twice
        self.on_new_memories: list[NewMemoriesHook] = [_propose_profile_values]
        from app.vault import VaultAccess

        self.vault = VaultAccess(lambda: self.settings)  # the data key when the vault is on

    @property
    def memory(self) -> MemoryStore:
        if self._memory is not None and self.vault.idle_expired():
            self.lock()
        if self._memory is None:
            from memory import MemoryStore

            self.settings.ensure_home()
            # Locked: MemexError kind "locked" ("memex is locked ..."), for every front-end.
            self._memory = self.vault.open(
                lambda key: MemoryStore(
                    self.settings.home,
                    embed_model=self.settings.embed_model,
                    embed_batch=self.settings.embed_batch,
                    chroma_url=self.settings.chroma_url,
                    chunk_chars=self.settings.chunk_chars,
                    key=key,
                )
            )
        self.vault.touch()
        return self._memory

    def lock(self) -> None:
        """Close the store and drop the key this process holds (auto-lock, `memex vault lock`)."""
        if self._memory is not None:
            self._memory.close()
            self._memory = None
        self.vault.forget()

    # memory writes go through here so hooks (the profile inbox) see every new memory ---------
    def remember(
        self,
        text: str,
        *,
        source: str | None = None,
        at: datetime | None = None,
        kind: str = "note",
    ) -> tuple[Memory, bool]:
        mem, created = self.memory.remember(text, source=source, at=at, kind=kind)
        if created:
            self._notify([mem])
        return mem, created

    def import_paths(
        self,
        paths: Sequence[Path],
        *,
        progress: Callable[[ImportProgress], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        max_memories_per_file: int | None = None,
    ) -> ImportReport:
        report = self.memory.import_paths(
            paths,
            progress=progress,
            cancel=cancel,
            max_memories_per_file=max_memories_per_file
            or self.settings.import_max_memories_per_file,
        )
        if report.memory_ids and self.on_new_memories:
            mems = [m for m in (self.memory.get(i) for i in report.memory_ids) if m is not None]
            self._notify(mems)
        return report

    def forget(self, ids: Iterable[str]) -> int:
        return self.memory.forget(ids)

    def forget_source(self, source: str) -> int:
        return self.memory.forget_source(source)

    def _notify(self, mems: Sequence[Memory]) -> None:
        for hook in list(self.on_new_memories):
            hook(self, mems)

    # inference ------------------------------------------------------------------------
    def adapter_path(self) -> str:
        """The LoRA adapter applied at run time: settings.adapter_path, else the active trained
        one unless it is served merged into the model (`served_model`)."""
        return self._served().adapter_path

    def _served(self) -> Served:
        return served_model(self.settings)

    @property
    def backend(self) -> Backend:
        """The generation backend, loaded on first use and reloaded when the active adapter
        changes (activate / roll back); BackendError becomes a MemexError."""
        with self._backend_lock:
            served = self._served()
            if self._backend is not None and served != self._backend_served:
                self._backend.close()
                self._backend = None
            if self._backend is None:
                self._backend = self._create_backend(served)
                self._backend_served = served
            return self._backend

    @property
    def model_loaded(self) -> bool:
        """Whether the generation backend is loaded now (asking never loads it)."""
        return self._backend is not None

    def loaded_backend(self) -> Backend | None:
        """The generation backend if it is loaded now, else None; never loads it (for display)."""
        return self._backend

    def unload_model(self) -> None:
        """Close the loaded backend: the next answer that needs the model loads the chosen one."""
        with self._backend_lock:
            backend, self._backend, self._backend_served = self._backend, None, None
        if backend is not None:
            backend.close()

    def _create_backend(self, served: Served) -> Backend:
        from app.errors import MemexError
        from inference.base import BackendConfig, BackendError, create_backend

        s = self.settings
        config = BackendConfig(
            model_path=served.model_path,
            adapter_path=served.adapter_path,
            n_ctx=s.n_ctx,
            threads=s.threads,
            options={
                "lora_scale": str(s.lora_scale),
                "extra_buffers": s.llama_extra_buffers,
                "prompt_lookup": str(s.prompt_lookup_tokens),
                "moe_model": s.moe_model,
                "moe_budget": s.moe_budget,
                "moe_policy": s.moe_policy,
                "moe_device": s.moe_device,
                "moe_quant": s.moe_quant,
                "models_dir": str(s.models_dir),
                "openai_base_url": s.openai_base_url,
                "openai_api_key": s.openai_api_key,
                "openai_model": s.openai_model,
                "openai_timeout_s": str(s.openai_timeout_s),
                "allow_remote_backend": str(s.allow_remote_backend).lower(),
            },
        )
        from dataclasses import replace

        from app.adapters import loadable

        try:
            # with the vault on, sealed adapter weights load from an in-memory copy
            with loadable(s, served, self.vault.key) as plain:
                return create_backend(
                    s.backend,
                    replace(config, model_path=plain.model_path, adapter_path=plain.adapter_path),
                )
        except BackendError as exc:
            raise MemexError(str(exc), kind="model") from exc

    def generation_params(self, max_tokens: int | None = None) -> GenerationParams:
        from inference.base import GenerationParams

        return GenerationParams(
            max_tokens=max_tokens or self.settings.max_answer_tokens, temperature=0.0
        )

    def generate(self, prompt: str, max_tokens: int = 128) -> str:
        """One prompt in, the model's reply out (the `generate(prompt) -> str` other packages
        get)."""
        from inference.base import ChatMessage

        return "".join(
            self.backend.stream([ChatMessage("user", prompt)], self.generation_params(max_tokens))
        )

    def ask_stream(
        self,
        question: str,
        *,
        history: Sequence[ChatMessage] = (),
        now: datetime | None = None,
        max_tokens: int | None = None,
        strategy: str | None = None,
    ) -> AnswerStream:
        """Retrieve + find the evidence now; iterate the result for reply pieces, then `.result()`.

        The default strategy answers from evidence spans without loading the model."""
        from app.answer import prepare_answer
        from app.answer import strategy as answer_strategy

        chosen = answer_strategy(strategy or self.settings.answer_strategy)
        params = self.generation_params(max_tokens)
        prepared = prepare_answer(
            self.memory,
            question,
            tokenizer=(lambda: self.backend) if chosen.name == "generate" else None,
            answer_tokens=params.max_tokens,
            history=history,
            now=now,
        )
        return chosen.stream(prepared, lambda: self.backend, params)

    def ask(
        self, question: str, *, history: Sequence[ChatMessage] = (), now: datetime | None = None
    ) -> Answer:
        return self.ask_stream(question, history=history, now=now).result()

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
        if self._memory is not None:
            self._memory.close()
            self._memory = None


def _propose_profile_values(runtime: Runtime, mems: Sequence[Memory]) -> None:
    """New memories -> profile proposals in the review inbox (app/inbox.py)."""
    from app.inbox import propose  # loads memory.extract only once memories arrive

    generate = runtime.generate if runtime.settings.inbox_use_model else None
    try:
        propose(runtime.memory, mems, generate)
    except Exception:  # a side feature must never fail the write that already succeeded
        logging.getLogger(__name__).warning("profile proposals failed", exc_info=True)
