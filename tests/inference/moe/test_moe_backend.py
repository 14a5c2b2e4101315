"""MoEBackend behind the Backend protocol, as `memex ask/chat` use it."""

from __future__ import annotations

import pytest

from inference.base import (
    Backend,
    BackendConfig,
    BackendError,
    ChatMessage,
    GenerationParams,
    create_backend,
)


def test_moe_backend_streams_text(tiny_dir, tmp_path):
    config = BackendConfig(
        model_path=str(tiny_dir["mixtral"]),
        n_ctx=512,
        options={
            "budget": "2x",
            "policy": "lru",
            "device": "cpu",
            "cache_dir": str(tmp_path / "cache"),
        },
    )
    backend = create_backend("moe", config)
    try:
        assert isinstance(backend, Backend)
        pieces = list(
            backend.stream(
                [ChatMessage("user", "Where do I live?")], GenerationParams(max_tokens=6)
            )
        )
        assert all(isinstance(p, str) for p in pieces)
        assert backend.count_tokens("hello") == 5  # byte-level tiny tokenizer
        assert backend.context_length == 512
        assert backend.describe()["policy"] == "lru"
        # greedy decoding is deterministic
        again = list(
            backend.stream(
                [ChatMessage("user", "Where do I live?")], GenerationParams(max_tokens=6)
            )
        )
        assert again == pieces
    finally:
        backend.close()


def test_moe_backend_bad_model_is_a_backend_error(tmp_path):
    with pytest.raises(BackendError, match="neither tiny, moefied nor an existing checkpoint"):
        create_backend("moe", BackendConfig(options={"moe_model": str(tmp_path / "nope")}))


def test_moe_backend_with_runtime_options(tiny_dir, tmp_path):
    """The option names app.runtime passes from settings; a GGUF model_path is ignored."""
    options = {
        "moe_model": str(tiny_dir["olmoe"]),
        "moe_budget": "1x",
        "moe_policy": "lfu",
        "moe_device": "cpu",
        "models_dir": str(tmp_path / "home" / "models"),
    }
    backend = create_backend("moe", BackendConfig(model_path="/some/model.gguf", options=options))
    try:
        assert backend.describe()["policy"] == "lfu"
        text = "".join(backend.stream([ChatMessage("user", "hi")], GenerationParams(max_tokens=4)))
        assert isinstance(text, str)
        assert list((tmp_path / "home" / "cache" / "moe").glob("experts-*.bin"))
    finally:
        backend.close()


def test_moefied_missing_says_what_to_run(tmp_path):
    with pytest.raises(BackendError, match="memex moe moefy"):
        create_backend("moe", BackendConfig(options={"models_dir": str(tmp_path / "models")}))


def test_gpu_script_runs_at_tiny_size_on_cpu():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "benchmarks" / "gpu_moe.py"
    spec = importlib.util.spec_from_file_location("gpu_moe", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    out = mod.main(
        [
            "--device",
            "cpu",
            "--dtype",
            "float32",
            "--layers",
            "2",
            "--experts",
            "8",
            "--hidden",
            "64",
            "--expert-dim",
            "32",
            "--top-k",
            "2",
            "--vocab",
            "128",
            "--heads",
            "4",
            "--kv-heads",
            "2",
            "--tokens",
            "3",
            "--prompt-tokens",
            "8",
            "--budgets",
            "2x",
            "--quants",
            "none,int4",
        ]
    )
    # the fused grouped-GEMM path by default (the loop path: test_testbed.py)
    assert out["runs"]["none/2x"]["policies"]["lru"]["compute"] == "fused"
    for quant in ("none", "int4"):
        runs = out["runs"][f"{quant}/2x"]["policies"]
        assert set(runs) == {"on_demand", "lru", "fate", "fate_plus", "resident"}
        # every policy computes what `resident` computes on the same (quantized) experts
        assert all(r["max_abs_logit_diff"] == 0.0 for r in runs.values())
        summary = out["summary"][f"{quant}/2x"]
        assert summary["resident"]["vs_resident"] == 1.0 and summary["lru"]["vs_lru"] == 1.0
        assert summary["fate_plus"]["prediction_accuracy"] is not None
    stored = {q: out["runs"][f"{q}/2x"]["expert_bytes_stored"] for q in ("none", "int4")}
    assert stored["int4"] < 0.5 * stored["none"]
