"""Assembling the engine: checkpoint -> config + device weights + slow tier -> models.

`load_model` does the expensive part once (non-expert weights, the expert file); then
`LoadedModel.build(policy, budget)` makes a `MoEModel` with its own fast tier and cache,
so several policies can run in one process on the same weights. `quant` picks how experts
are stored and moved (`quant.QUANT_SCHEMES`: none | int8 | int4 | int4_int2); `with_quant`
reopens the same model with other expert files, sharing the non-expert weights.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.moe.cache import CacheGeometry, ExpertCache, create_policy
from inference.moe.checkpoint import Checkpoint
from inference.moe.config import MoEConfig, from_hf_config, load_hf_config
from inference.moe.errors import MoEError, unknown
from inference.moe.storage.loader import make_loader
from inference.moe.storage.store import (
    DiskSlowTier,
    ExpertLayout,
    FastTier,
    MemorySlowTier,
    SlowTier,
    build_expert_file,
    expert_layout,
    parse_budget,
)
from inference.moe.weights import DenseWeights, load_dense

if TYPE_CHECKING:
    import torch

    from inference.moe.lora import AdapterReport
    from inference.moe.model import MoEModel

SLOW_TIERS = ("disk", "memory", "pinned")


@dataclass
class LoadedModel:
    """Everything policies share: config, device weights and the slow tier."""

    cfg: MoEConfig
    dense: DenseWeights
    slow: SlowTier  # variant 0: how the cache keeps experts
    device: str
    dtype: torch.dtype
    folder: Path | None = None
    hf_config: Any = None
    _tmpdir: str | None = field(default=None, repr=False)
    quant: str = "none"
    cold: SlowTier | None = None  # int4_int2 scheme: INT2 copies for loads of not-yet-hot experts
    cache_dir: Path | None = None
    slow_tier: str = "disk"
    direct_io: bool = True
    loader: str = "auto"  # loader.LOADERS: how expert reads run on the CPU
    compute: str = "auto"  # model.COMPUTE_PATHS: fused grouped GEMMs or the per-expert loop
    routing: Any = None  # testbed.RoutingSource replaying recorded routing (None: the routers)
    predictor_routers: tuple[Any, ...] | None = None  # what predictors see (testbed: the trace's)
    predictor_folder: Path | None = None  # where fitted predictor maps are (else `folder`)
    adapter: AdapterReport | None = None  # the LoRA merged into `dense` (lora.py), if any

    @property
    def layout(self) -> ExpertLayout:
        return self.slow.layout

    @property
    def slows(self) -> list[SlowTier]:
        return [self.slow] if self.cold is None else [self.slow, self.cold]

    def with_quant(self, quant: str) -> LoadedModel:
        """The same model with experts stored as `quant`; shares the non-expert weights.

        Close the returned model before this one (this one owns any temporary folder).
        """
        if self.folder is None or self.cache_dir is None:
            raise MoEError("This model was not loaded from a checkpoint folder; load it again.")
        from inference.moe.storage.quant import quant_name

        quant = quant_name(quant)
        slow, cold = _open_slow_tiers(
            self.folder, self.cfg, self.dtype, self.cache_dir, quant, self.slow_tier, self.direct_io
        )
        return LoadedModel(
            self.cfg,
            self.dense,
            slow,
            self.device,
            self.dtype,
            self.folder,
            self.hf_config,
            None,
            quant,
            cold,
            self.cache_dir,
            self.slow_tier,
            self.direct_io,
            self.loader,
            adapter=self.adapter,
        )

    def slots_for(self, budget: str | float) -> int:
        return parse_budget(budget, self.layout, self.cfg.top_k) // self.layout.nbytes

    def build(
        self,
        policy: str,
        budget: str | float = "2x",
        prefill_chunk: int = 0,
        **policy_options: Any,
    ) -> MoEModel:
        from inference.moe.model import MoEModel

        # predictor policies load fitted maps from it
        policy_options.setdefault("folder", self.predictor_folder or self.folder)
        pol = create_policy(policy, **policy_options)
        slots = self.layout.count if pol.resident else self.slots_for(budget)
        # a shared pool lets a reader process fill the slots (loader "process", CPU + disk)
        shared = self.loader != "thread" and self.device == "cpu" and self.slow_tier == "disk"
        fast = FastTier(self.layout, slots, self.device, shared=shared)
        moe = self.cfg.moe_layers
        geometry = CacheGeometry(
            moe_layers=moe,
            num_experts=self.cfg.num_experts,
            top_k=self.cfg.top_k,
            slots=slots,
            expert_bytes=self.layout.nbytes,
            routers=self.predictor_routers or tuple(self.dense.layers[i].router for i in moe),
            norm_topk_prob=self.cfg.norm_topk_prob,
        )
        cache = ExpertCache(
            pol,
            geometry,
            fast,
            make_loader(self.slows, fast, self.loader),
            self.cfg.hidden_size,
            self.cfg.expert_dim,
            variants=[s.layout for s in self.slows],
        )
        if pol.resident:
            cache.preload_all()
        model = MoEModel(
            self.cfg,
            self.dense,
            cache,
            self.device,
            self.dtype,
            prefill_chunk,
            compute=self.compute,
        )
        model.routing = self.routing
        return model

    def close(self) -> None:
        self.slow.close()
        if self.cold is not None:
            self.cold.close()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


def configure_threads(threads: int = 0) -> int:
    """Set torch's CPU threads; 0 = physical cores minus one (at least one).

    One core is left to the expert reader (process or thread) so expert reads overlap
    compute; decode-time matmuls are too small to gain from the last core anyway.
    """
    import psutil
    import torch

    if threads <= 0:
        threads = max(1, (psutil.cpu_count(logical=False) or 1) - 1)
    torch.set_num_threads(threads)
    return threads


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MoEError(
            "--device cuda was asked for but no CUDA GPU is available; use --device cpu."
        )
    return device


def load_model(
    folder: Path,
    device: str = "cpu",
    dtype: str = "auto",
    slow_tier: str = "auto",
    cache_dir: Path | None = None,
    direct_io: bool = True,
    quant: str = "none",
    adapter: str | Path | None = None,
    lora_scale: float = 1.0,
) -> LoadedModel:
    """Open a Mixtral/OLMoE/Qwen2-MoE checkpoint folder for serving.

    The expert file (slow tier) is derived data kept in `cache_dir`, keyed by the
    checkpoint's fingerprint, dtype and quant scheme; it is rebuilt when missing. Without
    `cache_dir` it lives in a temporary folder removed by `close()`. `adapter`: a GGUF LoRA
    merged into the non-expert weights (lora.py); the expert files do not depend on it.
    """
    import torch

    from inference.moe.storage.quant import QUANT_ALIASES, QUANT_SCHEMES

    quant = QUANT_ALIASES.get(quant, quant)
    if quant not in QUANT_SCHEMES:
        raise unknown("expert quantization", quant, QUANT_SCHEMES)
    folder = Path(folder)
    device = resolve_device(device)
    hf = load_hf_config(folder)
    cfg = from_hf_config(hf, name=folder.name)
    if slow_tier == "auto":
        slow_tier = "pinned" if device != "cpu" else "disk"
    if slow_tier not in SLOW_TIERS:
        raise unknown("slow tier", slow_tier, SLOW_TIERS)
    tmpdir = None
    with Checkpoint(folder) as ckpt:
        if dtype == "auto":
            torch_dtype = ckpt.get("model.embed_tokens.weight").dtype
            if device == "cpu":
                torch_dtype = torch.float32  # CPU matmuls in bf16/fp16 are slow and inexact
        else:
            torch_dtype = getattr(torch, dtype)
        ckpt.validate_experts(cfg)
        dense = load_dense(ckpt, cfg, hf, device, torch_dtype)
    report = None
    if adapter:
        from inference.moe.lora import apply_lora

        report = apply_lora(dense, cfg, Path(adapter), lora_scale)
    if cache_dir is None:
        tmpdir = tempfile.mkdtemp(prefix="memex-moe-")
        cache_dir = Path(tmpdir)
    slow, cold = _open_slow_tiers(
        folder, cfg, torch_dtype, Path(cache_dir), quant, slow_tier, direct_io
    )
    return LoadedModel(
        cfg,
        dense,
        slow,
        device,
        torch_dtype,
        folder=folder,
        hf_config=hf,
        _tmpdir=tmpdir,
        quant=quant,
        cold=cold,
        cache_dir=Path(cache_dir),
        slow_tier=slow_tier,
        direct_io=direct_io,
        adapter=report,
    )


def _open_slow_tiers(
    folder: Path,
    cfg: MoEConfig,
    dtype: torch.dtype,
    cache_dir: Path,
    quant: str,
    slow_tier: str,
    direct_io: bool,
) -> tuple[SlowTier, SlowTier | None]:
    """(the cached form, the cold form or None) of the experts, building missing files."""
    from inference.moe.storage.quant import CODEC_VERSION, get_scheme

    scheme = get_scheme(quant)
    bits = [0 if scheme.cached_bits == 32 else scheme.cached_bits]
    if scheme.cold_bits != scheme.cached_bits:
        bits.append(scheme.cold_bits)
    tiers: list[SlowTier] = []
    with Checkpoint(folder) as ckpt:
        stem = f"experts-{ckpt.fingerprint()}-{str(dtype).removeprefix('torch.')}"
        for b in bits:
            path = cache_dir / (f"{stem}.bin" if not b else f"{stem}-int{b}-c{CODEC_VERSION}.bin")
            if not path.exists():
                build_expert_file(ckpt, cfg, path, dtype, bits=b)
            disk = DiskSlowTier(path, expected=expert_layout(cfg, dtype, b), direct=direct_io)
            tier: SlowTier = disk
            if slow_tier in ("memory", "pinned"):
                tier = MemorySlowTier.from_disk(disk, pin=slow_tier == "pinned")
                disk.close()
            tiers.append(tier)
    return tiers[0], (tiers[1] if len(tiers) > 1 else None)
