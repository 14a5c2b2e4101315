"""Personal LoRA fine-tuning: dataset synthesis, offloaded training, GGUF LoRA export, QA eval.

Only light modules are re-exported here; torch, transformers, peft and llama_cpp are imported
inside the modules that train, export or evaluate.
"""

from __future__ import annotations

from finetune.errors import DatasetError, DiskFullError, ExportError, FinetuneError, ModelLoadError
from finetune.types import (
    OFFLOAD_CHOICES,
    EvalReport,
    Example,
    MemoryRecord,
    ProfileRecord,
    TrainConfig,
    TrainResult,
)

__all__ = [
    "OFFLOAD_CHOICES",
    "DatasetError",
    "DiskFullError",
    "EvalReport",
    "Example",
    "ExportError",
    "FinetuneError",
    "MemoryRecord",
    "ModelLoadError",
    "ProfileRecord",
    "TrainConfig",
    "TrainResult",
]
