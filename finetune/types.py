"""Plain values that cross the finetune boundary (the app layer builds and reads them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

Split = Literal["train", "heldout_paraphrase", "heldout_memory", "abstain_eval"]
SPLITS: tuple[str, ...] = ("train", "heldout_paraphrase", "heldout_memory", "abstain_eval")
OFFLOAD_CHOICES: tuple[str, ...] = ("none", "cpu", "disk")
LORA_KINDS: tuple[str, ...] = ("auto", "plain", "block")


@dataclass(frozen=True)
class MemoryRecord:
    """One memory as training data sees it; forgotten memories are simply never passed in."""

    id: str
    text: str
    when: datetime
    kind: str = "note"
    superseded_by: str | None = None
    topic: str | None = None


@dataclass(frozen=True)
class ProfileRecord:
    key: str
    value: str


@dataclass(frozen=True)
class Example:
    """One chat turn to learn (or to evaluate). `answer_keys` decide correctness in eval."""

    id: str
    question: str
    answer: str
    split: str
    kind: str  # fact | profile | identity | history | abstain
    memory_id: str | None = None
    answer_keys: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["answer_keys"] = list(self.answer_keys)
        return data


@dataclass
class TrainConfig:
    """Everything the training child needs; written as JSON next to the run."""

    base_model: str  # GGUF file or HF directory
    dataset: str  # JSONL path
    work_dir: str  # checkpoints, progress, outputs
    cache_dir: str  # converted base weights (shared between runs)
    offload: str = "disk"
    steps: int = 0  # 0: derived from epochs
    epochs: float = 5.0
    seq_len: int = 512
    batch: int = 4
    micro_batch: int = 0  # 0: chosen from max_rss_gb (or = batch)
    max_rss_gb: float = 0.0
    max_gpu_gb: float = (
        0.0  # --offload cpu: GPU memory activations may use (0: least, every layer recomputed)
    )
    lr: float = 1e-3
    rank: int = 16
    alpha: float = 32.0
    target_modules: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )
    seed: int = 0
    checkpoint_every: int = 5
    loss_chunk: int = 256  # completion rows per logits chunk
    pack: bool = True  # several short examples per --seq-len row
    threads: int = 0
    system_prompt: str = ""
    lora_kind: str = (
        "auto"  # plain | block (merges losslessly into Q4_1/Q5_1) | auto: block when it can
    )
    # A run whose length comes from `epochs` is cut to the steps that fit in this many seconds,
    # measured on its first step (0: no bound); explicit `steps` are run as asked.
    max_seconds: float = 1800.0

    def __post_init__(self) -> None:
        if self.offload not in OFFLOAD_CHOICES:
            raise ValueError(
                f"offload must be one of {', '.join(OFFLOAD_CHOICES)}, not {self.offload!r}"
            )
        for name in ("batch", "seq_len", "rank"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)!r}")
        if self.lora_kind not in LORA_KINDS:
            raise ValueError(
                f"lora_kind must be one of {', '.join(LORA_KINDS)}, not {self.lora_kind!r}"
            )
        if self.max_seconds < 0:
            raise ValueError(f"max_seconds must be >= 0, not {self.max_seconds!r}")
        if self.steps < 0 or self.epochs <= 0:
            raise ValueError("steps must be >= 0 and epochs > 0")
        if self.max_gpu_gb < 0 or (self.max_gpu_gb > 0 and self.offload != "cpu"):
            raise ValueError("max_gpu_gb must be >= 0 and applies to --offload cpu only")
        self.target_modules = tuple(self.target_modules)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class TrainResult:
    steps: int
    loss_first: float
    loss_last: float
    losses: tuple[float, ...]
    peak_rss_mb: float
    peak_gpu_mb: float
    train_tok_s: float
    adapter_gguf: str
    adapter_dir: str
    resumed_from: int = 0
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["losses"] = list(self.losses)
        data["notes"] = list(self.notes)
        return data


@dataclass(frozen=True)
class QAScore:
    n: int
    correct: int
    abstained: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0


@dataclass
class EvalReport:
    n: int
    base: dict[str, float] = field(default_factory=dict)
    adapter: dict[str, float] = field(default_factory=dict)
    abstention: dict[str, float] = field(default_factory=dict)
    samples: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
