"""Training loop: offload policies agree, spill works, checkpoints resume, errors are clear."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest

from finetune import DiskFullError, FinetuneError, ModelLoadError, TrainConfig
from finetune.runner import TrainingJob
from finetune.trainer import train


def _cfg(tiny, dataset: Path, cache: Path, work: Path, **kw) -> TrainConfig:
    base = dict(
        base_model=str(tiny.hf_dir),
        dataset=str(dataset),
        work_dir=str(work),
        cache_dir=str(cache),
        steps=4,
        batch=4,
        seq_len=128,
        checkpoint_every=1,
        threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_policies_learn_the_same_loss_curve(tiny, tiny_dataset, base_cache, tmp_path) -> None:
    from finetune.data import read_jsonl, write_jsonl

    # four examples, one per packed row, all in every batch: each step's loss is the dataset's
    small = write_jsonl(
        [e for e in read_jsonl(tiny_dataset) if e.split == "train"][:4], tmp_path / "small.jsonl"
    )
    curves = {}
    for policy in ("none", "disk", "cpu"):
        events: list[dict] = []
        res = train(
            _cfg(tiny, small, base_cache, tmp_path / policy, offload=policy, lr=1e-2, seq_len=96),
            events.append,
        )
        curves[policy] = res.losses
        assert min(res.losses[1:]) < res.loss_first - 0.1  # same batch every step: it learns
        adapted = json.loads((Path(res.adapter_dir) / "adapter_config.json").read_text())[
            "target_modules"
        ]
        assert set(adapted) == {
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        }
        assert Path(res.adapter_gguf).exists()
        steps = [e for e in events if e["phase"] == "train"]
        assert [e["step"] for e in steps] == [1, 2, 3, 4]
        assert {"loss", "tokens_s", "peak_rss_mb", "peak_gpu_mb", "eta_s", "total"} <= set(steps[0])
        if policy == "cpu":
            assert any("No CUDA" in e.get("message", "") for e in events if e["phase"] == "note")
    assert curves["disk"] == pytest.approx(curves["none"], rel=1e-4)
    assert curves["cpu"] == pytest.approx(curves["none"], rel=1e-4)


def test_disk_policy_spills_saved_activations(
    tiny, tiny_dataset, base_cache, tmp_path, monkeypatch
) -> None:
    from finetune import spill

    written: list[int] = []
    orig = spill.SpillRing.write

    def counting(self, t):
        h = orig(self, t)
        written.append(h.nbytes)
        return h

    monkeypatch.setattr(spill.SpillRing, "write", counting)
    monkeypatch.setattr(spill, "MIN_SPILL_BYTES", 1024)
    train(
        _cfg(tiny, tiny_dataset, base_cache, tmp_path / "w", offload="disk", steps=1),
        lambda e: None,
    )
    assert written and sum(written) > 0
    assert not (tmp_path / "w" / "spill.ring").exists()  # removed after training


def test_chunked_loss_equals_plain_loss(tiny) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune.batches import collate, encode
    from finetune.data import synthesize
    from finetune.loss import chunked_loss, plain_loss
    from tests.finetune.tiny_model import sample_memories

    tok = AutoTokenizer.from_pretrained(str(tiny.hf_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny.hf_dir))
    items = [encode(tok, e, 128) for e in synthesize(sample_memories())[:3]]
    batch = collate(items, tok.eos_token_id)
    a, n1 = plain_loss(model, batch)
    b, n2 = chunked_loss(model, batch, chunk=7)
    assert n1 == n2 and float(a) == pytest.approx(float(b), rel=1e-5)


def test_disk_full_during_spill_is_a_clear_error(
    tiny, tiny_dataset, base_cache, tmp_path, monkeypatch
) -> None:
    def no_space(fd, off, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(DiskFullError, match="full while spilling"):
        train(_cfg(tiny, tiny_dataset, base_cache, tmp_path / "w", offload="disk"), lambda e: None)


def test_base_model_transformers_cannot_load(tiny_dataset, base_cache, tmp_path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelLoadError, match="cannot load the base model"):
        train(
            TrainConfig(
                base_model=str(bad),
                dataset=str(tiny_dataset),
                work_dir=str(tmp_path / "w"),
                cache_dir=str(base_cache),
            ),
            lambda e: None,
        )
    with pytest.raises(ModelLoadError, match="does not exist"):
        train(
            TrainConfig(
                base_model=str(tmp_path / "nope.gguf"),
                dataset=str(tiny_dataset),
                work_dir=str(tmp_path / "w"),
                cache_dir=str(base_cache),
            ),
            lambda e: None,
        )


def test_max_rss_too_small_says_what_to_do(tiny, tiny_dataset, base_cache, tmp_path) -> None:
    with pytest.raises(FinetuneError, match="--max-rss-gb 0.01 is too small"):
        train(_cfg(tiny, tiny_dataset, base_cache, tmp_path / "w", max_rss_gb=0.01), lambda e: None)


def test_max_rss_picks_a_micro_batch(tiny) -> None:
    from transformers import AutoConfig

    from finetune.offload import OFFLOAD_POLICIES, plan_micro_batch

    config = AutoConfig.from_pretrained(str(tiny.hf_dir))
    cfg = TrainConfig(
        base_model="x",
        dataset="x",
        work_dir="x",
        cache_dir="x",
        batch=8,
        seq_len=512,
        max_rss_gb=2.0,
    )
    none = plan_micro_batch(cfg, OFFLOAD_POLICIES["none"], config, n_params=3_000_000)
    disk = plan_micro_batch(cfg, OFFLOAD_POLICIES["disk"], config, n_params=3_000_000)
    assert 1 <= none < disk <= 8


def _run_child(
    cfg: TrainConfig, kill_at: int | None = None, sig: int = signal.SIGKILL
) -> list[dict]:
    events: list[dict] = []
    job = TrainingJob(cfg).start()
    try:
        for e in job.events():
            events.append(e)
            if kill_at is not None and e.get("phase") == "train" and e["step"] >= kill_at:
                os.kill(job.pid, sig)
                if sig == signal.SIGKILL:
                    break
        job.proc.wait(timeout=120)
    finally:
        job.__exit__(None, None, None)
    return events


def test_kill_9_resumes_with_the_same_loss_curve(tiny, tiny_dataset, base_cache, tmp_path) -> None:
    full = train(
        _cfg(tiny, tiny_dataset, base_cache, tmp_path / "ref", steps=6), lambda e: None
    ).losses
    cfg = _cfg(tiny, tiny_dataset, base_cache, tmp_path / "run", steps=6, checkpoint_every=2)
    first = _run_child(cfg, kill_at=3)
    assert first[-1]["phase"] == "train"  # killed, no "done"
    second = _run_child(cfg)
    assert any(e["phase"] == "resume" for e in second)
    resumed_at = next(e["step"] for e in second if e["phase"] == "resume")
    assert resumed_at == 2  # the last checkpoint before the kill
    done = next(e for e in second if e["phase"] == "done")["result"]
    assert done["resumed_from"] == 2
    assert done["losses"] == pytest.approx(list(full), rel=1e-5)


def test_cancel_is_clean_and_resumable(tiny, tiny_dataset, base_cache, tmp_path) -> None:
    cfg = _cfg(tiny, tiny_dataset, base_cache, tmp_path / "run", steps=8, checkpoint_every=100)
    events = _run_child(cfg, kill_at=2, sig=signal.SIGTERM)
    last = events[-1]
    assert last["phase"] == "cancelled" and "resume" in last["error"]
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert state["step"] == last["step"] >= 2
    job = TrainingJob(cfg).start()
    with job:
        result = job.wait()
    assert result.resumed_from == state["step"] and result.steps == 8


def test_packed_examples_stay_separate(tiny) -> None:
    """Two examples packed in one row give the same loss as each alone (mask + positions)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune.batches import collate, encode, pack
    from finetune.data import synthesize
    from finetune.loss import plain_loss
    from tests.finetune.tiny_model import sample_memories

    tok = AutoTokenizer.from_pretrained(str(tiny.hf_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny.hf_dir), attn_implementation="sdpa")
    a, b = (encode(tok, e, 128) for e in synthesize(sample_memories())[:2])
    rows = pack([a, b], 512)
    assert len(rows) == 1 and rows[0].starts == (0, len(a.input_ids))
    together, n = plain_loss(model, collate(rows, tok.eos_token_id))
    alone = [plain_loss(model, collate([x], tok.eos_token_id)) for x in (a, b)]
    assert n == sum(k for _, k in alone)
    assert float(together) == pytest.approx(sum(float(v) for v, _ in alone), rel=1e-4)
