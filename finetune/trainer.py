"""The training loop that runs inside the child process.

Deterministic by construction (seeded LoRA init, batches a pure function of the step, no
dropout), so a run resumed from a checkpoint continues the same loss curve.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from finetune import checkpoint as ckpt
from finetune.batches import IGNORE, batch_indices, collate, encode, pack
from finetune.blocklora import base_supports_blocks, make_block_constant, unparametrize
from finetune.data import dataset_digest, read_jsonl
from finetune.errors import DatasetError, FinetuneError
from finetune.meters import peak_gpu_mb, peak_rss_mb, reset_peak_rss, rss_mb
from finetune.model import add_lora, load_base, prepare_base
from finetune.offload import OFFLOAD_POLICIES, plan_micro_batch
from finetune.types import TrainConfig, TrainResult

Emit = Callable[[dict[str, Any]], None]


class Cancelled(FinetuneError):
    def __init__(self, step: int) -> None:
        super().__init__(
            f"Training was cancelled at step {step}; run it again to resume.", kind="cancelled"
        )
        self.step = step


class StopNow(BaseException):
    """A stop request that arrived outside a critical section: the work in flight is dropped.

    A BaseException, like KeyboardInterrupt, so no `except Exception` on the way swallows it.
    """


class StopRequest:
    """Set from a SIGTERM/SIGINT handler; `should_stop` for `train`.

    One step can take a minute on a busy laptop, so waiting for its end is not "stop now".
    Outside `critical()` the first request raises StopNow at once: a forward/backward in flight
    is simply dropped, because the LoRA weights and the optimizer state change only in the
    optimizer step and the checkpoint write, which run inside `critical()`.
    """

    def __init__(self) -> None:
        self.requested = False
        self._critical = 0

    def __call__(self) -> bool:
        return self.requested

    def request(self) -> None:
        first, self.requested = not self.requested, True
        if first and self._critical == 0:
            raise StopNow

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1


def _critical(should_stop: Callable[[], bool]) -> contextlib.AbstractContextManager[None]:
    return (
        should_stop.critical() if isinstance(should_stop, StopRequest) else contextlib.nullcontext()
    )


def total_steps(cfg: TrainConfig, n_train: int) -> int:
    if cfg.steps:
        return cfg.steps
    return max(1, math.ceil(cfg.epochs * n_train / cfg.batch))


def fingerprint(cfg: TrainConfig, digest: str) -> str:
    """What must match for a checkpoint to be resumed (not: threads, max_rss, offload)."""
    keys = (
        "base_model",
        "steps",
        "epochs",
        "seq_len",
        "batch",
        "pack",
        "lr",
        "rank",
        "alpha",
        "target_modules",
        "seed",
        "system_prompt",
        "lora_kind",
    )
    raw = json.dumps({k: cfg.to_json()[k] for k in keys}, sort_keys=True) + digest
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def use_block_lora(cfg: TrainConfig) -> bool:
    """`auto`: block LoRA when the base GGUF stores its layers as Q4_1/Q5_1 (see blocklora)."""
    return cfg.lora_kind == "block" or (
        cfg.lora_kind == "auto" and base_supports_blocks(cfg.base_model)
    )


def lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    """Short warm-up, then linear decay to 10%; a pure function of the step."""
    warm = max(1, total // 10)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return cfg.lr * (1.0 - 0.9 * (step - warm) / max(1, total - warm))


PLAN_FILE = "plan.json"


def bounded_total(cfg: TrainConfig, total: int, s_per_step: float, done: int) -> int:
    """The steps a run may take: an `epochs` run is cut to what fits in `max_seconds`."""
    if cfg.steps or not cfg.max_seconds or s_per_step <= 0:
        return total
    return max(done, min(total, int(cfg.max_seconds / s_per_step)))


def _planned_total(work: Path, fp: str) -> int | None:
    """The total a resumed run settled on (the time bound is measured once per run)."""
    try:
        plan = json.loads((work / PLAN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return int(plan["total"]) if isinstance(plan, dict) and plan.get("fingerprint") == fp else None


def _estimate(cfg: TrainConfig, total: int, planned: int, s_per_step: float) -> dict[str, Any]:
    left = planned * s_per_step
    msg = f"about {s_per_step:.1f} s a step: {planned} steps, about {_minutes(left)} in all"
    if planned < total:
        msg += (
            f" (cut from {total} steps to fit the {_minutes(cfg.max_seconds)} bound; "
            "pass --steps N to choose the length)"
        )
    return {
        "phase": "note",
        "kind": "estimate",
        "message": msg,
        "steps": planned,
        "planned_from": total,
        "s_per_step": round(s_per_step, 3),
        "total_s": round(left, 1),
        "max_s": cfg.max_seconds,
    }


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def train(
    cfg: TrainConfig, emit: Emit, should_stop: Callable[[], bool] = lambda: False
) -> TrainResult:
    import torch

    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    threads = cfg.threads or max(1, (os.cpu_count() or 2))
    torch.set_num_threads(threads)
    emit({"phase": "load", "step": 0, "total": 0})
    examples = [e for e in read_jsonl(cfg.dataset) if e.split == "train"]
    info = prepare_base(cfg.base_model, cfg.cache_dir)
    policy_cls = OFFLOAD_POLICIES[cfg.offload]
    policy = policy_cls(cfg, work)
    for note in policy.notes:
        emit({"phase": "note", "message": note})
    model, tok = load_base(info, mmap=policy.mmap_base, device=policy.device)
    n_params = sum(p.numel() for p in model.parameters())
    cfg.micro_batch = plan_micro_batch(cfg, policy_cls, model.config, n_params)
    encoded = [encode(tok, e, cfg.seq_len, cfg.system_prompt) for e in examples]
    encoded = [e for e in encoded if e.n_target > 1]
    if not encoded:
        raise DatasetError(f"No training example in {cfg.dataset} fits in --seq-len {cfg.seq_len}.")
    if cfg.pack:
        # shuffled first (seeded, so a resume packs the same rows): the dataset lists a
        # memory's paraphrases together, and a row of one memory's answers teaches little
        order = torch.randperm(
            len(encoded), generator=torch.Generator().manual_seed(cfg.seed)
        ).tolist()
        encoded = pack([encoded[i] for i in order], cfg.seq_len)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    total = total_steps(cfg, len(encoded))
    torch.manual_seed(cfg.seed)
    peft_model = add_lora(model, cfg.rank, cfg.alpha, cfg.target_modules)
    if use_block_lora(cfg):
        n_block = make_block_constant(peft_model)
        emit(
            {
                "phase": "note",
                "message": f"block LoRA on {n_block} modules: it merges into the "
                "quantized base at the base's size and speed",
            }
        )
    peft_model.train()
    policy.prepare(peft_model)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    named = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
    opt = policy.make_optimizer(trainable, cfg.lr)
    fp = fingerprint(cfg, dataset_digest(cfg.dataset))
    state = ckpt.TrainState(fingerprint=fp)
    resumed = ckpt.load(work, fp)
    planned = _planned_total(work, fp) if resumed is not None else None
    total = planned or total
    if resumed is not None:
        state, lora_sd, opt_sd = resumed
        with torch.no_grad():
            for n, t in lora_sd.items():
                named[n].copy_(t)
        opt.load_state_dict(opt_sd)
        emit({"phase": "resume", "step": state.step, "total": total})
    start_step = state.step
    causal = peft_model.get_base_model()
    reset_peak_rss()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    if planned is None:
        bound = (
            f", at most {_minutes(cfg.max_seconds)} of it"
            if cfg.max_seconds and not cfg.steps
            else ""
        )
        emit(
            {
                "phase": "note",
                "kind": "plan",
                "steps": total,
                "examples": len(examples),
                "rows": len(encoded),
                "message": f"{len(examples)} examples in {len(encoded)} rows: "
                f"{total} steps{bound}; the first step sets the estimate",
            }
        )
    t0, tokens_here = time.perf_counter(), 0
    try:
        step = state.step
        try:
            while step < total:
                if should_stop():
                    raise StopNow
                step_loss, n_real_step = _forward_backward(
                    cfg, policy, causal, opt, encoded, step, total, pad_id
                )
                with _critical(should_stop):
                    opt.step()
                    tokens_here += n_real_step
                    state.step = step + 1
                    state.losses.append(round(step_loss, 6))
                    elapsed = time.perf_counter() - t0
                    done_here = state.step - start_step
                    if planned is None:
                        planned = bounded_total(cfg, total, elapsed / done_here, state.step)
                        (work / PLAN_FILE).write_text(
                            json.dumps({"fingerprint": fp, "total": planned})
                        )
                        emit(_estimate(cfg, total, planned, elapsed / done_here))
                        total = planned
                    emit(
                        {
                            "phase": "train",
                            "step": state.step,
                            "total": total,
                            "loss": round(step_loss, 4),
                            "tokens": tokens_here,
                            "tokens_s": round(tokens_here / elapsed, 1) if elapsed else 0.0,
                            "rss_mb": rss_mb(),
                            "peak_rss_mb": peak_rss_mb(),
                            "peak_gpu_mb": peak_gpu_mb(),
                            "eta_s": round(elapsed / done_here * (total - state.step), 1),
                        }
                    )
                    if state.step % cfg.checkpoint_every == 0 or state.step == total:
                        _save(work, state, named, opt)
                step += 1
        except StopNow:
            # Outside critical(): weights, optimizer and state are those of the last full step.
            with _critical(should_stop):
                _save(work, state, named, opt)
            raise Cancelled(state.step) from None
        elapsed = time.perf_counter() - t0
        peak, gpu = peak_rss_mb(), peak_gpu_mb()
        emit({"phase": "export", "step": total, "total": total})
        from finetune.export import export_gguf_lora, save_hf_adapter

        with _critical(should_stop):  # seconds, and every step is done: finish rather than stop
            unparametrize(peft_model)  # a plain LoRA on disk (block-constant A written out in full)
            adapter_dir = save_hf_adapter(peft_model, work / "adapter_hf")
            gguf_path = export_gguf_lora(adapter_dir, info, work / "adapter.gguf")
    finally:
        policy.close()
    return TrainResult(
        steps=total,
        loss_first=state.losses[0] if state.losses else 0.0,
        loss_last=state.losses[-1] if state.losses else 0.0,
        losses=tuple(state.losses),
        peak_rss_mb=peak,
        peak_gpu_mb=gpu,
        train_tok_s=round(tokens_here / elapsed, 1) if elapsed and tokens_here else 0.0,
        adapter_gguf=str(gguf_path),
        adapter_dir=str(adapter_dir),
        resumed_from=start_step,
        notes=tuple(policy.notes),
    )


def _forward_backward(
    cfg: TrainConfig,
    policy: Any,
    causal: Any,
    opt: Any,
    encoded: list[Any],
    step: int,
    total: int,
    pad_id: int,
) -> tuple[float, int]:
    """Gradients of one step (no weight changes yet); (loss, real tokens seen)."""
    idx = batch_indices(step, cfg.batch, len(encoded), cfg.seed)
    items = [encoded[i] for i in idx]
    # targets are next tokens: a label at position 0 predicts nothing
    n_tokens = sum(e.n_target for e in items) - sum(1 for e in items if e.labels[0] != IGNORE)
    for g in opt.param_groups:
        g["lr"] = lr_at(cfg, step, total)
    opt.zero_grad(set_to_none=True)
    step_loss, n_seen = 0.0, 0
    for m in range(0, len(items), cfg.micro_batch):
        batch = collate(items[m : m + cfg.micro_batch], pad_id)
        n_real = batch.pop("n_real")
        batch = {k: v.to(policy.device) for k, v in batch.items()}
        with policy.forward_context():
            loss_sum, _n = policy.loss(causal, batch)
        (loss_sum / n_tokens).backward()
        policy.after_backward()
        step_loss += float(loss_sum.detach()) / n_tokens
        n_seen += n_real
    return step_loss, n_seen


def _save(work: Path, state: ckpt.TrainState, named: dict[str, Any], opt: Any) -> None:
    lora = {n: p.detach().cpu().clone() for n, p in named.items()}
    ckpt.save(work, state, lora, opt.state_dict())
