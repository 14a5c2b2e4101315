"""The training set: the store's memories and profile as plain records, synthesized into QA rows.

What a personal model learns from. Forgotten memories are gone from the store, so they are
never trained on; superseded ones are passed marked, so the dataset teaches the newer fact.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import MemexError

if TYPE_CHECKING:
    from app.runtime import Runtime
    from finetune import Example, MemoryRecord, ProfileRecord

WORK_DIR = ".work"  # under settings.adapters_dir: the dataset and the run being trained


def vault_key(runtime: Runtime) -> bytes | None:
    """The data key when the vault is on (MemexError "locked" when it cannot be unlocked)."""
    return runtime.vault.key() if runtime.vault.enabled() else None


def work_dir(runtime: Runtime) -> Path:
    """Where the training set and the run in progress live.

    With the vault on they hold memory text in the clear, so they go to a private folder on
    memory-backed storage outside the data folder, never under it.
    """
    settings = runtime.settings
    if not runtime.vault.enabled():
        return settings.adapters_dir / WORK_DIR
    from memory.vault import private_ram_dir

    tag = hashlib.sha256(str(settings.home.resolve()).encode()).hexdigest()[:12]
    folder = private_ram_dir(f"memex-train-{tag}")
    if folder is None:
        raise MemexError(
            "Training with the vault on needs private in-memory storage ($XDG_RUNTIME_DIR or "
            "/dev/shm) for its work files, and this machine has neither.",
            kind="vault",
        )
    return folder


def training_records(runtime: Runtime) -> tuple[list[MemoryRecord], list[ProfileRecord]]:
    """Plain records from the store: forgotten memories are gone, superseded ones marked."""
    from finetune import MemoryRecord, ProfileRecord

    mems = [
        MemoryRecord(
            id=m.id,
            text=m.text,
            when=m.when,
            kind=m.kind,
            superseded_by=m.superseded_by,
            topic=m.topic,
        )
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
    path = out_path or work_dir(runtime) / "dataset.jsonl"
    write_jsonl(examples, path)
    return Path(path), examples
