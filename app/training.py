"""Personal model training and evaluation: dataset -> training child -> a new adapter version.

The training set comes from app/training_set.py and the finished run is stored with
app/adapters.py's `AdapterStore`, then activated; a failed or cancelled run never touches the
active adapter. Evaluation compares base and adapter on held-out paraphrases in llama.cpp.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.adapters import AdapterStore, base_model_path, ram_copy
from app.errors import MemexError
from app.training_set import prepare_dataset, vault_key, work_dir

if TYPE_CHECKING:
    from app.runtime import Runtime
    from app.settings import Settings

CACHE_DIR = ".base-cache"
OnEvent = Callable[[dict[str, Any]], None]


@dataclass
class TrainOptions:
    offload: str = "disk"
    steps: int = 0
    epochs: float = (
        5.0  # persona held-out QA: 40% after 3 epochs, 47% after 5 (benchmarks/finetune.py)
    )
    seq_len: int = 512  # packed rows: 91% full at 512, 78% at 256
    batch: int = 4
    max_rss_gb: float = 0.0
    max_gpu_gb: float = 0.0  # --offload cpu on a GPU: 0 = least memory (every layer recomputed)
    lr: float = 1e-3
    rank: int = 16
    dataset: str = ""  # an edited dataset file; empty: synthesize from memory
    merge: bool = True
    lora_kind: str = "auto"  # block LoRA on a Q4_1/Q5_1 base: merged at the base's size and speed


# -- train -----------------------------------------------------------------------------
def train(runtime: Runtime, opts: TrainOptions, on_event: OnEvent | None = None) -> dict[str, Any]:
    from finetune import FinetuneError, TrainConfig
    from finetune.data import read_jsonl
    from finetune.runner import run_training

    settings = runtime.settings
    base = base_model_path(settings)
    key = vault_key(runtime)
    work = work_dir(runtime)  # in private RAM outside the data folder when the vault is on
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
            base_model=base,
            dataset=str(dataset),
            work_dir=str(work / "run"),
            cache_dir=str(settings.adapters_dir / CACHE_DIR),
            offload=opts.offload,
            steps=opts.steps,
            epochs=opts.epochs,
            seq_len=opts.seq_len,
            batch=opts.batch,
            max_rss_gb=opts.max_rss_gb,
            max_gpu_gb=opts.max_gpu_gb,
            lr=opts.lr,
            rank=opts.rank,
            alpha=2.0 * opts.rank,
            threads=settings.threads,
            lora_kind=opts.lora_kind,
        )
    except ValueError as exc:
        raise MemexError(f"Invalid training option: {exc}.", kind="bad_input") from exc
    try:
        result = run_training(cfg, on_event)
    except FinetuneError as exc:
        raise MemexError(exc.message, kind=exc.kind) from exc
    run = Path(cfg.work_dir)
    files = {
        "adapter.gguf": Path(result.adapter_gguf),
        "adapter_hf": Path(result.adapter_dir),
        "dataset.jsonl": dataset,
    }
    merged_note = ""
    if opts.merge and base.endswith(".gguf"):
        merged_note = _merge(base, Path(result.adapter_gguf), run / "merged.gguf", on_event)
        if (run / "merged.gguf").exists():
            files["merged.gguf"] = run / "merged.gguf"
    metrics = {
        **result.to_json(),
        "config": cfg.to_json(),
        "base_model": base,
        "merge": merged_note,
    }
    store = AdapterStore(settings)
    try:
        version = store.add(files, metrics, key=key)
    except OSError as exc:
        raise MemexError(
            f"Could not save the new adapter ({exc.strerror or exc}); "
            "the previous adapter stays active.",
            kind="export_failed",
        ) from exc
    store.activate(version)
    shutil.rmtree(run, ignore_errors=True)  # checkpoints of a finished run are not needed
    if key is not None:
        shutil.rmtree(work, ignore_errors=True)  # the plaintext training set goes with them
    return {
        "adapter": str(settings.adapters_dir / version / "adapter.gguf"),
        "version": version,
        "steps": result.steps,
        "loss_first": result.loss_first,
        "loss_last": result.loss_last,
        "peak_rss_mb": result.peak_rss_mb,
        "peak_gpu_mb": result.peak_gpu_mb,
        "train_tok_s": result.train_tok_s,
        "resumed_from": result.resumed_from,
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
        return load_llama(
            model_path,
            n_ctx=n_ctx,
            threads=threads,
            lora_path=lora_path,
            lora_scale=settings.lora_scale,
            extra_buffers=settings.llama_extra_buffers,
        )

    return load


def _read_dataset(runtime: Runtime, path: Path) -> list[Any]:
    """A stored training set, sealed or not; a sealed one is opened in private RAM only."""
    from finetune.data import read_jsonl
    from memory.errors import MemoryStoreError
    from memory.vault import is_sealed, read_sealed

    if not is_sealed(path):
        return read_jsonl(path)
    key = vault_key(runtime)
    if key is None:
        raise MemexError(f"The training set {path} is sealed but the vault is off.", kind="vault")
    try:
        data = read_sealed(path, key)
    except MemoryStoreError as exc:
        raise MemexError(str(exc), kind=getattr(exc, "kind", "vault")) from exc
    clear = work_dir(runtime) / f".eval-{path.parent.name}.jsonl"
    try:
        fd = os.open(clear, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return read_jsonl(clear)
    finally:
        clear.unlink(missing_ok=True)


# -- eval ------------------------------------------------------------------------------
def evaluate(runtime: Runtime, version: str | None = None) -> dict[str, Any]:
    """Held-out paraphrase QA and abstention, base vs adapter, both in llama.cpp."""
    from finetune import FinetuneError
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
        examples = _read_dataset(runtime, dataset)
        with LlamaQA(base, threads=settings.threads, loader=loader) as base_qa:
            if version:
                # a sealed adapter (the vault is on) loads from an in-memory copy
                adapter = ram_copy(settings, folder / "adapter.gguf", vault_key(runtime))
                try:
                    with LlamaQA(base, adapter, threads=settings.threads, loader=loader) as ad_qa:
                        report = qa_report(examples, base_qa, ad_qa)
                finally:
                    if adapter != folder / "adapter.gguf":
                        adapter.unlink(missing_ok=True)
            else:
                report = qa_report(examples, base_qa, None)
    except FinetuneError as exc:
        raise MemexError(exc.message, kind=exc.kind) from exc
    except BackendError as exc:
        raise MemexError(str(exc), kind="model") from exc
    out = report.to_json()
    out["version"] = version
    if version:
        store.update_metrics(
            version, eval={k: out[k] for k in ("n", "base", "adapter", "abstention")}
        )
    else:
        out["adapter"] = {"qa_accuracy": None}
    return out
