"""Assembling the engine: checkpoint -> config + device weights + slow tier -> models.

`load_model` does the expensive part once (non-expert weights, the expert file); then
`LoadedModel.build(policy, budget)` makes a `MoEModel` with its own fast tier and cache,
so several policies can run in one process on the same weights.
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
from inference.moe.errors import MoEError
from inference.moe.loader import make_loader
from inference.moe.store import (
    DiskSlowTier,
    ExpertLayout,
    FastTier,
    MemorySlowTier,
    SlowTier,
    build_expert_file,
    parse_budget,
)
from inference.moe.weights import DenseWeights, load_dense

if TYPE_CHECKING:
    import torch

    from inference.moe.model import MoEModel

SLOW_TIERS = ("disk", "memory", "pinned")


@dataclass
class LoadedModel:
    """Everything policies share: config, device weights and the slow tier."""

    cfg: MoEConfig
    dense: DenseWeights
    slow: SlowTier
    device: str
    dtype: torch.dtype
    folder: Path | None = None
    hf_config: Any = None
    _tmpdir: str | None = field(default=None, repr=False)

    @property
    def layout(self) -> ExpertLayout:
        return self.slow.layout

    def slots_for(self, budget: str | float) -> int:
        return parse_budget(budget, self.layout, self.cfg.top_k) // self.layout.nbytes

    def build(self, policy: str, budget: str | float = "2x", **policy_options: Any) -> MoEModel:
        from inference.moe.model import MoEModel

        policy_options.setdefault("folder", self.folder)  # predictor policies load fitted maps from it
        pol = create_policy(policy, **policy_options)
        slots = self.layout.count if pol.resident else self.slots_for(budget)
        fast = FastTier(self.layout, slots, self.device)
        moe = self.cfg.moe_layers
        geometry = CacheGeometry(
            moe_layers=moe,
            num_experts=self.cfg.num_experts,
            top_k=self.cfg.top_k,
            slots=slots,
            expert_bytes=self.layout.nbytes,
            routers=tuple(self.dense.layers[i].router for i in moe),
            norm_topk_prob=self.cfg.norm_topk_prob,
        )
        cache = ExpertCache(
            pol,
            geometry,
            fast,
            make_loader(self.slow, fast),
            self.cfg.hidden_size,
            self.cfg.expert_dim,
        )
        if pol.resident:
            cache.preload_all()
        return MoEModel(self.cfg, self.dense, cache, self.device, self.dtype)

    def close(self) -> None:
        self.slow.close()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


def configure_threads(threads: int = 0) -> int:
    """Set torch's CPU threads; 0 = physical cores minus one (at least one).

    One core is left to the loader thread so expert reads overlap compute; decode-time
    matmuls are too small to gain from the last core anyway.
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
) -> LoadedModel:
    """Open a Mixtral/OLMoE/Qwen2-MoE checkpoint folder for serving.

    The expert file (slow tier) is derived data kept in `cache_dir`, keyed by the
    checkpoint's fingerprint and dtype; it is rebuilt when missing. Without `cache_dir`
    it lives in a temporary folder removed by `close()`.
    """
    import torch

    folder = Path(folder)
    device = resolve_device(device)
    hf = load_hf_config(folder)
    cfg = from_hf_config(hf, name=folder.name)
    if slow_tier == "auto":
        slow_tier = "pinned" if device != "cpu" else "disk"
    if slow_tier not in SLOW_TIERS:
        raise MoEError(f"Unknown slow tier {slow_tier!r}; choose one of: {', '.join(SLOW_TIERS)}.")
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
        if cache_dir is None:
            tmpdir = tempfile.mkdtemp(prefix="memex-moe-")
            cache_dir = Path(tmpdir)
        name = f"experts-{ckpt.fingerprint()}-{str(torch_dtype).removeprefix('torch.')}.bin"
        path = Path(cache_dir) / name
        if not path.exists():
            build_expert_file(ckpt, cfg, path, torch_dtype)
    itemsize = torch.empty((), dtype=torch_dtype).element_size()
    expected = ExpertLayout(
        cfg.moe_layers,
        cfg.num_experts,
        cfg.expert_numel,
        str(torch_dtype).removeprefix("torch."),
        itemsize,
    )
    disk = DiskSlowTier(path, expected=expected, direct=direct_io)
    slow: SlowTier = disk
    if slow_tier in ("memory", "pinned"):
        slow = MemorySlowTier.from_disk(disk, pin=slow_tier == "pinned")
        disk.close()
    return LoadedModel(
        cfg, dense, slow, device, torch_dtype, folder=folder, hf_config=hf, _tmpdir=tmpdir
    )
