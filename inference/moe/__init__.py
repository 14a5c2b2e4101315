"""The MoE expert-offloading engine (PyTorch).

Re-exports only, resolved lazily so that importing `inference.moe` loads no torch:
config (MoEConfig, load_hf_config), store (ExpertLayout, parse_budget), cache
(ExpertCache, CachePolicy, POLICIES, register_policy), engine (load_model, LoadedModel),
model (MoEModel), backend (MoEBackend), tiny (build_tiny), bench (run_bench), errors.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MoEConfig": "config",
    "FAMILIES": "config",
    "load_hf_config": "config",
    "from_hf_config": "config",
    "ExpertLayout": "store",
    "parse_budget": "store",
    "FastTier": "store",
    "DiskSlowTier": "store",
    "MemorySlowTier": "store",
    "ExpertCache": "cache",
    "CacheStats": "cache",
    "CacheGeometry": "cache",
    "CachePolicy": "cache",
    "POLICIES": "cache",
    "register_policy": "cache",
    "create_policy": "cache",
    "load_model": "engine",
    "LoadedModel": "engine",
    "MoEModel": "model",
    "KVCache": "model",
    "MoEBackend": "backend",
    "build_tiny": "tiny",
    "ensure_tiny": "tiny",
    "run_bench": "bench",
    "resolve_model": "resolve",
    "UnknownName": "errors",
    "MoEError": "errors",
    "UnsupportedModel": "errors",
    "CheckpointError": "errors",
    "BudgetError": "errors",
    "CorruptExpertFile": "errors",
    "ModelNotBuilt": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'inference.moe' has no attribute {name!r}")
    return getattr(importlib.import_module(f"inference.moe.{module}"), name)
