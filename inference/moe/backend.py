"""`MoEBackend`: the offloading engine behind inference.base.Backend (`memex ask/chat`).

BackendConfig.options (strings, all optional; the `moe_`-prefixed names are what the
Runtime passes from settings):
  moe_model / model    tiny | tiny-<family> | moefied | a checkpoint folder (default moefied);
                       model_path is used only when it is a folder (it is the GGUF otherwise)
  models_dir           where tiny/moefied models live (MEMEX_HOME/models)
  cache_dir            where the derived expert file is kept (default: models_dir/../cache/moe)
  moe_budget / budget  fast-tier budget (0.25, 2GB, 2x)
  moe_policy / policy  cache policy;  moe_device / device: cpu | cuda | auto
  moe_quant / quant    how experts are stored and moved: none | int8 | int4 | int4_int2 (alias fate)
  moe_prefill_chunk    prefill MoE blocks in chunks of N tokens (0: whole prompt)
  lora_scale           strength of the adapter (settings.lora_scale; default 1)
BackendConfig.adapter_path (the Runtime's active personal adapter, a GGUF LoRA) is merged
into the attention and dense-MLP weights at load (lora.py), as llama.cpp applies it.
Decoding is greedy (the engine's exactness contract); temperature is ignored.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inference.base import BackendConfig, BackendError, ChatMessage, GenerationParams
from inference.moe.errors import MoEError


class MoEBackend:
    name = "moe"

    def __init__(self, config: BackendConfig) -> None:
        from inference.moe.engine import configure_threads, load_model
        from inference.moe.resolve import resolve_model

        opts = config.options
        self.config = config
        path_is_folder = bool(config.model_path) and Path(config.model_path).is_dir()
        spec = (
            opts.get("moe_model")
            or opts.get("model")
            or (config.model_path if path_is_folder else "")
        )
        models_dir = Path(opts.get("models_dir") or Path(tempfile.gettempdir()) / "memex-models")
        cache_dir = Path(opts.get("cache_dir") or models_dir.parent / "cache" / "moe")
        self._budget = opts.get("moe_budget") or opts.get("budget") or "2x"
        self._policy = opts.get("moe_policy") or opts.get("policy") or "lru"
        device = opts.get("moe_device") or opts.get("device") or "auto"
        self._quant = opts.get("moe_quant") or opts.get("quant") or "none"
        self._lock = threading.Lock()
        self._loaded: Any = None
        try:
            self.folder = resolve_model(spec or "moefied", models_dir, build=False)
            if config.threads > 0:  # else leave the process-wide torch setting alone
                configure_threads(config.threads)
            self._loaded = load_model(
                self.folder,
                device=device,
                cache_dir=cache_dir,
                quant=self._quant,
                adapter=config.adapter_path or None,
                lora_scale=float(opts.get("lora_scale") or 1.0),
            )
            chunk = int(opts.get("moe_prefill_chunk") or opts.get("prefill_chunk") or 0)
            self._model = self._loaded.build(self._policy, self._budget, prefill_chunk=chunk)
        except MoEError as exc:
            self.close()
            raise BackendError(str(exc)) from exc
        from transformers import AutoTokenizer

        try:
            self._tok = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
        except Exception as exc:
            self.close()
            raise BackendError(
                f"The MoE model in {self.folder} has no usable tokenizer ({exc})."
            ) from exc

    # -- Backend protocol ---------------------------------------------------------------
    def _prompt_ids(self, messages: list[ChatMessage]) -> list[int]:
        chat = [{"role": m.role, "content": m.content} for m in messages]
        if getattr(self._tok, "chat_template", None):
            text = self._tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in chat) + "assistant: "
        return list(self._tok(text, add_special_tokens=False)["input_ids"])

    def stream(self, messages: list[ChatMessage], params: GenerationParams) -> Iterator[str]:
        prompt = self._prompt_ids(messages)
        room = self.context_length - len(prompt)
        if room <= 0:
            raise BackendError(
                f"The prompt has {len(prompt)} tokens; "
                f"the MoE model's context is {self.context_length}."
            )
        stop_ids = set(self._loaded.cfg.eos_token_ids)
        if self._tok.eos_token_id is not None:
            stop_ids.add(self._tok.eos_token_id)
        with self._lock:  # one generation at a time owns the cache and KV state
            ids: list[int] = []
            sent = ""
            for token in self._model.generate(
                prompt, min(params.max_tokens, room), stop_ids=tuple(stop_ids)
            ):
                if token in stop_ids:
                    break
                ids.append(token)
                text = str(self._tok.decode(ids, skip_special_tokens=True))
                if text.endswith("\ufffd"):
                    continue  # an incomplete UTF-8 sequence: wait for the next token
                cut = _first_stop(text, params.stop)
                if cut is not None:
                    if cut > len(sent):
                        yield text[len(sent) : cut]
                    return
                if len(text) > len(sent):
                    yield text[len(sent) :]
                    sent = text

    def count_tokens(self, text: str) -> int:
        return len(self._tok(text, add_special_tokens=False)["input_ids"])

    @property
    def context_length(self) -> int:
        return min(self.config.n_ctx, self._loaded.cfg.max_position)

    def describe(self) -> dict[str, str]:
        out = {
            "model": self.folder.name,
            "backend": "moe",
            "policy": self._policy,
            "budget": str(self._budget),
            "quant": self._loaded.quant,
            "device": self._loaded.device,
        }
        report = self._loaded.adapter
        out["adapter"] = Path(report.path).name if report else ""
        if report:
            out["adapter_applied"] = report.describe()
        return out

    def close(self) -> None:
        model = getattr(self, "_model", None)
        if model is not None:
            model.close()
            self._model = None
        if self._loaded is not None:
            self._loaded.close()
            self._loaded = None

    def __enter__(self) -> MoEBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None
