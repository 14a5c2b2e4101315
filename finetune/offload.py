"""Offload policies (registry name -> class): where training keeps what it must remember.

- none: the baseline; everything resident, full logits.
- cpu:  ZeRO-Offload on a GPU: LoRA master weights, gradients and AdamW state in pinned CPU
        memory (gradients leave the GPU as soon as backward produces them), saved activations
        in pinned CPU memory, per-layer checkpointing, chunked loss. Without CUDA it says so
        and falls back to checkpointing + chunked loss on the CPU.
- disk: MemAscend-style for laptops: per-layer checkpointing, saved tensors spilled to a
        preallocated ring file, chunked completion-only loss, memory-mapped frozen base.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from finetune.loss import checkpoint_layers, chunked_loss, plain_loss
from finetune.types import TrainConfig

OVERHEAD_BYTES = 700 * 2**20  # interpreter, torch, tokenizer, allocator slack (measured ~0.6 GB)


class OffloadPolicy:
    name: ClassVar[str] = "none"
    mmap_base: ClassVar[bool] = False

    def __init__(self, cfg: TrainConfig, work_dir: Path) -> None:
        import torch

        self.cfg = cfg
        self.work_dir = work_dir
        self.notes: list[str] = []
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model: Any = None

    def prepare(self, peft_model: Any) -> None:
        self.model = peft_model

    @contextlib.contextmanager
    def forward_context(self) -> Iterator[None]:
        yield

    def loss(self, causal_lm: Any, batch: dict[str, Any]) -> tuple[Any, int]:
        return plain_loss(causal_lm, batch)

    def make_optimizer(self, params: list[Any], lr: float) -> Any:
        import torch

        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0, foreach=False)

    def after_backward(self) -> None:
        """Called after each micro-batch's backward."""

    @staticmethod
    def bytes_per_token(config: Any, chunk: int) -> float:
        h, i, v = config.hidden_size, config.intermediate_size, config.vocab_size
        layers = config.num_hidden_layers
        # every layer's saved activations (~16 hidden-sized + 3 MLP-sized floats per token)
        # plus about three live copies of the full logits row
        return 4.0 * (layers * (16 * h + 3 * i) + 3 * v)

    def close(self) -> None:
        pass


class CheckpointedPolicy(OffloadPolicy):
    """Shared by cpu and disk: per-layer recompute and chunked completion-only loss."""

    def prepare(self, peft_model: Any) -> None:
        super().prepare(peft_model)
        checkpoint_layers(peft_model.get_base_model())

    def loss(self, causal_lm: Any, batch: dict[str, Any]) -> tuple[Any, int]:
        return chunked_loss(causal_lm, batch, self.cfg.loss_chunk)

    @staticmethod
    def bytes_per_token(config: Any, chunk: int) -> float:
        h, i = config.hidden_size, config.intermediate_size
        # one layer being recomputed + the kept layer inputs; the logits are bounded by chunk
        return 4.0 * ((16 * h + 3 * i) + 2 * h * config.num_hidden_layers / 4)


class DiskPolicy(CheckpointedPolicy):
    name = "disk"
    mmap_base = True

    def __init__(self, cfg: TrainConfig, work_dir: Path) -> None:
        super().__init__(cfg, work_dir)
        self.device = "cpu"  # the laptop policy; a GPU run wants `cpu`
        self.ring: Any = None

    def prepare(self, peft_model: Any) -> None:
        from finetune.spill import SpillRing

        super().prepare(peft_model)
        config = peft_model.get_base_model().config
        micro = self.cfg.micro_batch or self.cfg.batch
        # layer inputs for one micro-batch, with headroom for the embedding/norm outputs
        need = (config.num_hidden_layers + 4) * micro * self.cfg.seq_len * config.hidden_size * 4
        self.ring = SpillRing(self.work_dir / "spill.ring", int(need * 1.25))
        self._params = [p for p in peft_model.parameters()]

    @contextlib.contextmanager
    def forward_context(self) -> Iterator[None]:
        self.ring.reset()
        with self.ring.hooks(self._params):
            yield

    def close(self) -> None:
        if self.ring is not None:
            self.ring.close()
            self.ring = None

    @staticmethod
    def bytes_per_token(config: Any, chunk: int) -> float:
        h, i = config.hidden_size, config.intermediate_size
        return 4.0 * (16 * h + 3 * i)  # layer inputs live on disk


class CpuPolicy(CheckpointedPolicy):
    name = "cpu"

    def __init__(self, cfg: TrainConfig, work_dir: Path) -> None:
        super().__init__(cfg, work_dir)
        if self.device != "cuda":
            self.notes.append(
                "No CUDA device: --offload cpu falls back to activation checkpointing with chunked "
                "loss on the CPU."
                + (" --max-gpu-gb has no effect there." if cfg.max_gpu_gb else "")
            )

    def prepare(self, peft_model: Any) -> None:
        OffloadPolicy.prepare(self, peft_model)
        causal = peft_model.get_base_model()
        skip = 0
        if self.device == "cuda" and self.cfg.max_gpu_gb > 0:
            n_params = sum(p.numel() for p in causal.parameters())
            skip = kept_layers(self.cfg, causal.config, n_params)
        context = None
        if self.device == "cuda":
            from finetune.cpu_offload import keep_on_device

            context = keep_on_device
        n = checkpoint_layers(causal, skip=skip, kept_context=context)
        if skip:
            self.notes.append(
                f"--max-gpu-gb {self.cfg.max_gpu_gb:g}: {n} of {n + skip} decoder layers are "
                "recomputed in backward, the rest keep their activations on the GPU."
            )

    @contextlib.contextmanager
    def forward_context(self) -> Iterator[None]:
        if self.device != "cuda":
            yield
            return
        from finetune.cpu_offload import pinned_activation_hooks

        with pinned_activation_hooks(self.model.parameters()):
            yield

    def make_optimizer(self, params: list[Any], lr: float) -> Any:
        if self.device != "cuda":
            return super().make_optimizer(params, lr)
        from finetune.cpu_offload import CpuOffloadAdamW

        self._opt = CpuOffloadAdamW(params, lr=lr)
        return self._opt

    def after_backward(self) -> None:
        opt = getattr(self, "_opt", None)
        if opt is not None:
            opt.collect()


def kept_layers(cfg: TrainConfig, config: Any, n_params: int) -> int:
    """Decoder layers `--offload cpu` can leave un-recomputed within --max-gpu-gb.

    Fixed: the float32 weights, every layer's saved input, three logits chunks and 512 MB of
    slack; each kept layer adds its activations (OffloadPolicy's per-layer estimate, which
    over-counts SmolLM2's measured peak by ~15%)."""
    h, i, v = config.hidden_size, config.intermediate_size, config.vocab_size
    layers = config.num_hidden_layers
    tokens = (cfg.micro_batch or cfg.batch) * cfg.seq_len
    fixed = n_params * 4 + layers * tokens * h * 4 + 3 * cfg.loss_chunk * v * 4 + 512 * 2**20
    per_layer = 4.0 * (16 * h + 3 * i) * tokens
    room = cfg.max_gpu_gb * 2**30 - fixed
    return max(0, min(layers, int(room // per_layer))) if room > 0 else 0


OFFLOAD_POLICIES: dict[str, type[OffloadPolicy]] = {
    "none": OffloadPolicy,
    "cpu": CpuPolicy,
    "disk": DiskPolicy,
}


def plan_micro_batch(
    cfg: TrainConfig, policy: type[OffloadPolicy], config: Any, n_params: int
) -> int:
    """Largest micro-batch (<= batch) whose estimated peak fits in --max-rss-gb."""
    from finetune.errors import FinetuneError

    if cfg.micro_batch:
        return min(cfg.micro_batch, cfg.batch)
    if cfg.max_rss_gb <= 0:
        return cfg.batch
    budget = cfg.max_rss_gb * 2**30
    base = n_params * 4 + OVERHEAD_BYTES
    per_row = policy.bytes_per_token(config, cfg.loss_chunk) * cfg.seq_len
    fits = int((budget - base) // per_row) if budget > base else 0
    if fits < 1:
        need = (base + per_row) / 2**30
        raise FinetuneError(
            f"--max-rss-gb {cfg.max_rss_gb:g} is too small: one sequence of {cfg.seq_len} "
            f"tokens with --offload {policy.name} needs about {need:.1f} GB; raise it, lower "
            "--seq-len or use --offload disk.",
            kind="bad_input",
        )
    return max(1, min(cfg.batch, fits))
