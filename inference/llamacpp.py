"""The llama-cpp-python backend: GGUF models (dense or MoE) with an optional LoRA adapter.

One `Llama` per backend; a lock makes generations run one at a time (llama.cpp contexts are
not re-entrant), and `close()` frees the native memory explicitly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.base import BackendConfig, BackendError, ChatMessage, GenerationParams
from inference.models import check_gguf, resolve_model

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)

# Model loads patch a llama_cpp module function for a moment (see _model_params); serialize them.
_LOAD_LOCK = threading.Lock()
# Tokens the chat template adds around each message (<|im_start|>role\n ... <|im_end|>\n).
MESSAGE_OVERHEAD_TOKENS = 6
CLOSE_WAIT_S = 30.0


def physical_cores() -> int:
    """Physical cores: llama.cpp decodes slower when it also uses hyper-threads."""
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover - psutil is a core dependency
        n = None
    return max(1, n or os.cpu_count() or 1)


def cpu_advertises_amx() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        pass
    return False


def use_extra_buffers(option: str) -> bool:
    """Whether llama.cpp may use its extra CPU buffer types (AMX tiles, weight repacking).

    "auto" turns them off where the CPU advertises AMX: in virtual machines that expose the
    AMX flags without saving tile state, ggml's AMX kernels die with SIGILL (seen on
    Firecracker VMs). Repacking does not apply to the default Q4_1 model, so nothing is lost.
    """
    option = (option or "auto").lower()
    if option in ("on", "true", "1", "yes"):
        return True
    if option in ("off", "false", "0", "no"):
        return False
    return not cpu_advertises_amx()


@contextlib.contextmanager
def _model_params(**fields: Any) -> Iterator[None]:
    """Override llama_model_params fields that `Llama(...)` does not expose as arguments."""
    import llama_cpp.llama as llama_mod

    with _LOAD_LOCK:
        original = llama_mod.llama_cpp.llama_model_default_params

        def patched() -> Any:
            params = original()
            for key, value in fields.items():
                setattr(params, key, value)
            return params

        llama_mod.llama_cpp.llama_model_default_params = patched
        try:
            yield
        finally:
            llama_mod.llama_cpp.llama_model_default_params = original


def load_llama(
    model_path: str | Path,
    *,
    n_ctx: int = 4096,
    threads: int = 0,
    lora_path: str | Path | None = None,
    lora_scale: float = 1.0,
    extra_buffers: str = "auto",
    seed: int = 0,
    prompt_lookup: int = 0,
    flash_attn: bool = False,
) -> Llama:
    """Create a `Llama` with memex's settings; the benchmark uses it for the raw baseline too."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:  # pragma: no cover - core dependency
        raise BackendError("llama-cpp-python is not installed; reinstall memex.") from exc
    kwargs: dict[str, Any] = {
        "model_path": str(model_path),
        "n_ctx": n_ctx,
        "n_threads": threads or physical_cores(),
        "n_threads_batch": threads or physical_cores(),
        "seed": seed,
        "verbose": False,
    }
    if lora_path:
        kwargs.update(lora_path=str(lora_path), lora_scale=float(lora_scale))
    if prompt_lookup > 0 or flash_attn:
        # Batch-width-invariant logits: prompt lookup verifies drafts in one batch and must
        # match plain greedy decoding token for token (see inference/lookup.py).
        kwargs["flash_attn"] = True
    try:
        with _model_params(use_extra_bufts=use_extra_buffers(extra_buffers)):
            llm = Llama(**kwargs)
    except (ValueError, RuntimeError, OSError) as exc:
        what = f"adapter {Path(lora_path).name} on model" if lora_path else "model"
        raise BackendError(
            f"llama.cpp could not load the {what} {Path(model_path).name} ({exc}); "
            "check that the files are valid GGUF and belong together."
        ) from exc
    if prompt_lookup > 0:
        # Answers that copy the evidence verify several drafted tokens per decode.
        from inference.lookup import MAX_DRAFT_TOKENS, LookupConfig, install

        install(llm, LookupConfig(draft_tokens=min(prompt_lookup, MAX_DRAFT_TOKENS)))
    return llm


class LlamaCppBackend:
    """`inference.base.Backend` on llama-cpp-python."""

    name = "llamacpp"

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.model_path = resolve_model(config.model_path)
        self.adapter_path = (
            check_gguf(config.adapter_path, "adapter") if config.adapter_path else None
        )
        self.threads = config.threads or physical_cores()
        self._lock = threading.Lock()
        self._llm: Llama | None = load_llama(
            self.model_path,
            n_ctx=config.n_ctx,
            threads=self.threads,
            lora_path=self.adapter_path,
            lora_scale=float(config.options.get("lora_scale", "1.0")),
            extra_buffers=config.options.get("extra_buffers", "auto"),
            prompt_lookup=int(config.options.get("prompt_lookup", "0") or 0),
        )

    # -- Backend protocol ------------------------------------------------------------
    def stream(self, messages: list[ChatMessage], params: GenerationParams) -> Iterator[str]:
        """Yield reply pieces; the lock is held from the first piece until the generator ends."""
        with self._lock:
            llm = self._require()
            grammar = _grammar(params.grammar) if params.grammar else None
            chunks = llm.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages],  # type: ignore[misc]
                stream=True,
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                stop=list(params.stop),
                seed=params.seed,
                grammar=grammar,
            )
            try:
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")  # type: ignore[index, union-attr]
                    if piece:
                        yield str(piece)
            finally:
                # Closing the inner generator ends llama.cpp's loop before the lock is released.
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()

    def complete(self, messages: list[ChatMessage], params: GenerationParams) -> str:
        return "".join(self.stream(messages, params))

    def count_tokens(self, text: str) -> int:
        # Tokenizing reads only the vocabulary, so it needs no lock and never waits on a generation.
        if not text:
            return 0
        return len(self._require().tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def count_messages(self, messages: list[ChatMessage]) -> int:
        """Prompt tokens of a conversation, chat-template overhead included (plus the reply
        header)."""
        return sum(self.count_tokens(m.content) + MESSAGE_OVERHEAD_TOKENS for m in messages) + 4

    @property
    def context_length(self) -> int:
        return int(self._require().n_ctx())

    def describe(self) -> dict[str, str]:
        return {
            "backend": self.name,
            "model": self.model_path.name,
            "adapter": self.adapter_path.name if self.adapter_path else "",
            "threads": str(self.threads),
            "n_ctx": str(self.config.n_ctx),
        }

    def close(self) -> None:
        if self._llm is None:
            return
        # Never free native memory under a running generation; a stuck caller leaks instead.
        if not self._lock.acquire(timeout=CLOSE_WAIT_S):
            log.warning(
                "llama.cpp backend still generating after %.0fs; not freeing it", CLOSE_WAIT_S
            )
            return
        try:
            llm, self._llm = self._llm, None
            if llm is not None:
                llm.close()
        finally:
            self._lock.release()

    def __enter__(self) -> LlamaCppBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require(self) -> Llama:
        if self._llm is None:
            raise BackendError("The model was closed; create a new backend.")
        return self._llm


def _grammar(gbnf: str) -> Any:
    from llama_cpp import LlamaGrammar

    try:
        return LlamaGrammar.from_string(gbnf, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise BackendError(f"The answer grammar could not be parsed ({exc}).") from exc
