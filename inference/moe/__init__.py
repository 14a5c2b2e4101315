"""The MoE expert-offloading engine (PyTorch).

Layout: the engine itself here (config, checkpoint, weights, model + fused expert compute,
cache, engine, backend, resolve, errors, lora: the personal adapter merged into the
non-expert weights); `storage/` where experts live and how they move
(store, loader, procloader + readworker, quant); `policies/` the cache policies (the registry
and built-ins in its __init__, fate, fate_plus, adaptive prefetch width); `predictors/` the
next-layer predictors (cross_layer, prev_token, linear_map, wide_map: names of their own, not
the policies') and routing traces; `tools/` moefy, bench, lrc, the real-size testbed
and its GGUF export, tiny checkpoints.

Re-exports only, resolved lazily so that importing `inference.moe` loads no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MoEConfig": "config",
    "FAMILIES": "config",
    "load_hf_config": "config",
    "from_hf_config": "config",
    "ExpertLayout": "storage.store",
    "parse_budget": "storage.store",
    "FastTier": "storage.store",
    "DiskSlowTier": "storage.store",
    "MemorySlowTier": "storage.store",
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
    "build_tiny": "tools.tiny",
    "ensure_tiny": "tools.tiny",
    "run_bench": "tools.bench",
    "resolve_model": "resolve",
    "UnknownName": "errors",
    "MoEError": "errors",
    "UnsupportedModel": "errors",
    "CheckpointError": "errors",
    "AdapterError": "errors",
    "apply_lora": "lora",
    "AdapterReport": "lora",
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
