"""Personal model composition: memories -> dataset -> training child -> versioned adapters.

Adapters live under `settings.adapters_dir`, one folder per version (`v0001`, ...) holding
the GGUF LoRA (the source of truth), the peft adapter, the dataset it was trained on, its
metrics and, when the base is a GGUF, a merged re-quantized model for fast serving.
`active.json` names the active version and the activation history used by rollback. A
failed or cancelled training never touches the active adapter.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import MemexError

if TYPE_CHECKING:
    from app.runtime import Runtime
    from app.settings import Settings
    from finetune import Example, MemoryRecord, ProfileRecord

ACTIVE_FILE = "active.json"
# Serve the merged model instead of base + runtime LoRA. Measured (benchmarks/finetune.py,
# SmolLM2 Q4_1, 2 cores): merged with adapted tensors at Q8_0 answers exactly like the runtime
# LoRA (persona QA 14/30 both, greedy agreement 1.0) and decodes 0.75-0.82x the base vs 0.64-0.69x
# for the runtime LoRA; merged back to Q4_1 decodes like the base but loses the adapter (QA 1/30).
SERVE_MERGED = True
WORK_DIR = ".work"
CACHE_DIR = ".base-cache"
OnEvent = Callable[[dict[str, Any]], None]


@dataclass
class TrainOptions:
    offload: str = "disk"
    steps: int = 0
    epochs: float = 5.0  # persona held-out QA: 40% after 3 epochs, 47% after 5 (benchmarks/finetune.py)
    seq_len: int = 512  # packed rows: 91% full at 512, 78% at 256
    batch: int = 4
    max_rss_gb: float = 0.0
    max_gpu_gb: float = 0.0  # --offload cpu on a GPU: 0 = least memory (every layer recomputed)
    lr: float = 1e-3
    rank: int = 16
    dataset: str = ""  # an edited dataset file; empty: synthesize from memory
    merge: bool = True
    lora_kind: str = "auto"  # block LoRA on a Q4_1/Q5_1 base: merged at the base's size and speed


# -- adapters store --------------------------------------------------------------------
class AdapterStore:
    """Versioned adapters and which one is active; all writes are atomic renames."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.adapters_dir

    def _state(self) -> dict[str, Any]:
        path = self.root / ACTIVE_FILE
        if not path.exists():
            return {"active": None, "history": []}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise MemexError(f"The adapter state file {path} is damaged ({exc}); activate an adapter again.",
                             kind="bad_state") from exc
        return data if isinstance(data, dict) else {"active": None, "history": []}

    def _write_state(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / (ACTIVE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        os.replace(tmp, self.root / ACTIVE_FILE)

    def versions(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and p.name.startswith("v") and (p / "adapter.gguf").exists())

    def active(self) -> str | None:
        version = self._state().get("active")
        return version if version and (self.root / version / "adapter.gguf").exists() else None

    def path(self, version: str) -> Path:
        if version not in self.versions():
            raise MemexError(f"There is no adapter {version!r}; see `memex adapters list`.", kind="not_found")
        return self.root / version

    def activate(self, version: str) -> str:
        self.path(version)
        state = self._state()
        history = [v for v in state.get("history", []) if v != version] + [version]
        self._write_state({"active": version, "history": history})
        return version

    def rollback(self) -> str | None:
        """Reactivate the previously active version (or none if there was none)."""
        state = self._state()
        history = [v for v in state.get("history", []) if v in self.versions()]
        if not history or state.get("active") is None:
            raise MemexError("There is no active adapter to roll back.", kind="not_found")
        history = history[:-1] if history[-1] == state.get("active") else history
        previous = history[-1] if history else None
        self._write_state({"active": previous, "history": history})
        return previous

    def metrics(self, version: str) -> dict[str, Any]:
        path = self.root / version / "metrics.json"
        try:
            return dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            return {}

    def update_metrics(self, version: str, **changes: Any) -> None:
        path = self.path(version) / "metrics.json"
        data = {**self.metrics(version), **changes}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, path)

    def add(self, files: dict[str, Path], metrics: dict[str, Any]) -> str:
        """Copy a finished run into the next version folder (temp folder + rename)."""
        self.root.mkdir(parents=True, exist_ok=True)
        existing = [int(v[1:]) for v in self.versions() if v[1:].isdigit()]
        version = f"v{(max(existing) + 1 if existing else 1):04d}"
        tmp = self.root / f".{version}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            for name, src in files.items():
                if src.is_dir():
                    shutil.copytree(src, tmp / name)
                else:
                    shutil.copy2(src, tmp / name)
            metrics = {**metrics, "version": version, "created_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
            (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
            os.replace(tmp, self.root / version)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # a half-copied version is never visible
            raise
        return version


def active_adapter_path(settings: Settings) -> str | None:
    """The active GGUF LoRA file, for the Runtime's chat backend (None: no adapter)."""
    try:
        version = AdapterStore(settings).active()
    except MemexError:
        return None
    return str(settings.adapters_dir / version / "adapter.gguf") if version else None


def active_merged_model_path(settings: Settings) -> str | None:
    """The active adapter merged into the base GGUF, when one was built for it."""
    try:
        version = AdapterStore(settings).active()
    except MemexError:
        return None
    if not version:
        return None
    merged = settings.adapters_dir / version / "merged.gguf"
    return str(merged) if merged.exists() else None


@dataclass(frozen=True)
class Served:
    """What the chat backend loads: a model file and an optional runtime LoRA."""

    model_path: str  # "" = settings.model_path (the bundled model when that is empty too)
    adapter_path: str = ""
    version: str | None = None


def served_model(settings: Settings) -> Served:
    """settings.adapter_path wins; else the active adapter, merged when `SERVE_MERGED` and built
    for the configured base, else as a runtime LoRA; else the plain base model."""
    if settings.adapter_path:
        return Served(settings.model_path, settings.adapter_path)
    try:
        store = AdapterStore(settings)
        version = store.active()
    except MemexError:
        return Served(settings.model_path)
    if not version:
        return Served(settings.model_path)
    folder = settings.adapters_dir / version
    merged = folder / "merged.gguf"
    if SERVE_MERGED and settings.backend == "llamacpp" and merged.exists() \
            and _same_base(store.metrics(version).get("base_model"), settings):
        return Served(str(merged), "", version)
    return Served(settings.model_path, str(folder / "adapter.gguf"), version)


def _same_base(trained_on: Any, settings: Settings) -> bool:
    """A merged model is stale once the user points memex at another base model."""
    try:
        return bool(trained_on) and Path(str(trained_on)).resolve() == Path(base_model_path(settings)).resolve()
    except MemexError:
        return False


# -- data ------------------------------------------------------------------------------
def base_model_path(settings: Settings) -> str:
    from inference.base import BackendError
    from inference.models import resolve_model

    try:
        return str(resolve_model(settings.model_path))
    except BackendError as exc:
        raise MemexError(str(exc), kind="model") from exc


def training_records(runtime: Runtime) -> tuple[list[MemoryRecord], list[ProfileRecord]]:
    """Plain records from the store: forgotten memories are gone, superseded ones marked."""
    from finetune import MemoryRecord, ProfileRecord

    mems = [
        MemoryRecord(id=m.id, text=m.text, when=m.when, kind=m.kind, superseded_by=m.superseded_by,
                     topic=m.topic)
        for m in runtime.memory.iter_memories(include_superseded=True)
        if m.text and m.text.strip()
    ]
    profile = [ProfileRecord(key=f.key, value=f.value) for f in runtime.memory.profile()]
    return mems, profile


def prepare_dataset(runtime: Runtime, out_path: Path | None = None) -> tuple[Path, list[Example]]:
    from finetune import FinetuneError
    from finetune.data import synthesize, write_jsonl

    mems, profile = training_records(runtime)
    try:
        examples = synthesize(mems, profile)
    except FinetuneError as exc:
        raise MemexError(exc.message, kind="no_memories") from exc
    path = out_path or runtime.settings.adapters_dir / WORK_DIR / "dataset.jsonl"
    write_jsonl(examples, path)
    return Path(path), examples


# -- train -----------------------------------------------------------------------------
def train(runtime: Runtime, opts: TrainOptions, on_event: OnEvent | None = None) -> dict[str, Any]:
    from finetune import FinetuneError, TrainConfig
    from finetune.data import read_jsonl
    from finetune.runner import run_training

    settings = runtime.settings
    base = base_model_path(settings)
    work = settings.adapters_dir / WORK_DIR
    if opts.dataset:
        dataset = Path(opts.dataset).expanduser()
        try:
            read_jsonl(dataset)
        except FinetuneError as exc:
            raise MemexError(exc.message, kind=exc.kind) from exc
    else:
        dataset, _ = prepare_dataset(runtime)
    try:
        cfg = TrainConfig(
            base_model=base, dataset=str(dataset), work_dir=str(work / "run"),
            cache_dir=str(settings.adapters_dir / CACHE_DIR), offload=opts.offload, steps=opts.steps,
            epochs=opts.epochs, seq_len=opts.seq_len, batch=opts.batch, max_rss_gb=opts.max_rss_gb,
            max_gpu_gb=opts.max_gpu_gb, lr=opts.lr, rank=opts.rank, alpha=2.0 * opts.rank, threads=settings.threads,
            lora_kind=opts.lora_kind,
        )
    except ValueError as exc:
        raise MemexError(f"Invalid training option: {exc}.", kind="bad_input") from exc
    try:
        result = run_training(cfg, on_event)
    except FinetuneError as exc:
        raise MemexError(exc.message, kind=exc.kind) from exc
    run = Path(cfg.work_dir)
    files = {"adapter.gguf": Path(result.adapter_gguf), "adapter_hf": Path(result.adapter_dir),
             "dataset.jsonl": dataset}
    merged_note = ""
    if opts.merge and base.endswith(".gguf"):
        merged_note = _merge(base, Path(result.adapter_gguf), run / "merged.gguf", on_event)
        if (run / "merged.gguf").exists():
            files["merged.gguf"] = run / "merged.gguf"
    metrics = {**result.to_json(), "config": cfg.to_json(), "base_model": base, "merge": merged_note}
    store = AdapterStore(settings)
    try:
        version = store.add(files, metrics)
    except OSError as exc:
        raise MemexError(
            f"Could not save the new adapter ({exc.strerror or exc}); the previous adapter stays active.",
            kind="export_failed",
        ) from exc
    store.activate(version)
    shutil.rmtree(run, ignore_errors=True)  # checkpoints of a finished run are not needed
    return {
        "adapter": str(settings.adapters_dir / version / "adapter.gguf"), "version": version,
        "steps": result.steps, "loss_first": result.loss_first, "loss_last": result.loss_last,
        "peak_rss_mb": result.peak_rss_mb, "peak_gpu_mb": result.peak_gpu_mb,
        "train_tok_s": result.train_tok_s, "resumed_from": result.resumed_from,
        "notes": list(result.notes),
    }


def _merge(base: str, adapter: Path, out: Path, on_event: OnEvent | None) -> str:
    from finetune import FinetuneError
    from finetune.merge import merge_lora

    if on_event:
        on_event({"phase": "merge"})
    try:
        merge_lora(base, adapter, out)
    except (FinetuneError, ValueError, OSError) as exc:
        return f"not merged: {exc}"
    return "merged"


def _llama_loader(settings: Settings) -> Callable[..., Any]:
    """The chat backend's own llama.cpp loader (threads, CPU-buffer workarounds)."""
    from inference.llamacpp import load_llama

    def load(model_path: str, *, n_ctx: int, threads: int, lora_path: str | None) -> Any:
        return load_llama(model_path, n_ctx=n_ctx, threads=threads, lora_path=lora_path,
                          lora_scale=settings.lora_scale, extra_buffers=settings.llama_extra_buffers)

    return load


# -- eval ------------------------------------------------------------------------------
def evaluate(runtime: Runtime, version: str | None = None) -> dict[str, Any]:
    """Held-out paraphrase QA and abstention, base vs adapter, both in llama.cpp."""
    from finetune import FinetuneError
    from finetune.data import read_jsonl
    from finetune.evaluate import LlamaQA, qa_report
    from inference.base import BackendError

    settings = runtime.settings
    store = AdapterStore(settings)
    version = version or store.active()
    base = base_model_path(settings)
    if version:
        folder = store.path(version)
        dataset = folder / "dataset.jsonl"
    else:
        dataset, _ = prepare_dataset(runtime)
    loader = _llama_loader(settings)
    try:
        examples = read_jsonl(dataset)
        with LlamaQA(base, threads=settings.threads, loader=loader) as base_qa:
            if version:
                with LlamaQA(base, folder / "adapter.gguf", threads=settings.threads, loader=loader) as ad_qa:
                    report = qa_report(examples, base_qa, ad_qa)
            else:
                report = qa_report(examples, base_qa, None)
    except FinetuneError as exc:
        raise MemexError(exc.message, kind=exc.kind) from exc
    except BackendError as exc:
        raise MemexError(str(exc), kind="model") from exc
    out = report.to_json()
    out["version"] = version
    if version:
        store.update_metrics(version, eval={k: out[k] for k in ("n", "base", "adapter", "abstention")})
    else:
        out["adapter"] = {"qa_accuracy": None}
    return out
