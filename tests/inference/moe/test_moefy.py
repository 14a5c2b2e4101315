"""`memex moe moefy` end to end on a small variant (2 layers, few tokens), plus lrc/predict CLIs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import cli

E, K = 16, 4


def _run(home: Path, *args: str):
    result = CliRunner().invoke(cli, ["--home", str(home), "moe", *args, "--json"])
    return result, (
        json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else None
    )


@pytest.fixture(scope="module")
def small_moefied(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    home = tmp_path_factory.mktemp("moefy-home")
    out = home / "small"
    result, payload = _run(
        home,
        "moefy",
        "--out",
        str(out),
        "--experts",
        str(E),
        "--top-k",
        str(K),
        "--layers",
        "2",
        "--train-tokens",
        "512",
        "--eval-tokens",
        "256",
    )
    assert result.exit_code == 0, result.output
    return out, payload


@pytest.mark.slow
def test_moefy_writes_a_mixtral_checkpoint_transformers_loads(small_moefied) -> None:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    out, report = small_moefied
    assert report["experts"] == E and report["top_k"] == K and report["layers"] == 2
    assert report["active_share"] <= 0.25
    assert report["ppl_dense"] > 0 and report["ppl_moe"] > 0
    assert 0 < report["usage_skew"]["hottest_expert_token_share_mean"] <= 1
    for name in (
        "config.json",
        "model.safetensors",
        "routers_raw.safetensors",
        "tokenizer.json",
        "moefy.json",
    ):
        assert (out / name).is_file(), name
    cfg = AutoConfig.from_pretrained(out)
    assert (
        cfg.model_type == "mixtral" and cfg.num_local_experts == E and cfg.num_experts_per_tok == K
    )
    assert cfg.intermediate_size == 1536 // E
    tensors = load_file(str(out / "model.safetensors"))
    assert (
        "model.layers.1.block_sparse_moe.experts.15.w2.weight" in tensors
    )  # one tensor per expert

    # The exported block = unweighted sum of the k experts the raw router picks (weights ~1/k,
    # down projections scaled by k).
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    raw = load_file(str(out / "routers_raw.safetensors"))
    block = model.model.layers[0].mlp
    x = torch.randn(5, cfg.hidden_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = block(x.unsqueeze(0))
        got = (got[0] if isinstance(got, tuple) else got)[0]
    chosen = (x @ raw["layers.0.router"].T).topk(K, dim=1).indices
    want = torch.zeros_like(x)
    pre = "model.layers.0.block_sparse_moe.experts"
    for t in range(5):
        for e in chosen[t].tolist():
            w1, w3, w2 = (tensors[f"{pre}.{e}.{n}.weight"] for n in ("w1", "w3", "w2"))
            want[t] += (torch.nn.functional.silu(x[t] @ w1.T) * (x[t] @ w3.T)) @ w2.T / K
    assert torch.allclose(got, want, rtol=2e-3, atol=2e-3 * float(want.abs().max()))


@pytest.mark.slow
def test_lrc_and_predict_on_the_moefied_model(small_moefied) -> None:
    out, _ = small_moefied
    home = out.parent
    result, payload = _run(home, "lrc", "--model", str(out), "--segment", "8", "--tokens", "256")
    assert result.exit_code == 0, result.output
    assert set(payload["sch"]) == {"1x", "2x", "4x"} and set(payload["per_layer"]) == {"0", "1"}
    assert 0 < payload["srp"] <= 1
    assert payload["sch"]["1x"] <= payload["sch"]["2x"] <= payload["sch"]["4x"] <= 1
    result, payload = _run(home, "predict", "--model", str(out), "--tokens", "256")
    assert result.exit_code == 0, result.output
    assert set(payload["predictors"]) == {"prev_token", "cross_layer", "linear_map"}
    assert all(0 <= p["accuracy"] <= 1 for p in payload["predictors"].values())
    assert payload["predictors"]["cross_layer"]["width"] == K + 1


def test_lrc_on_the_tiny_model(memex_home: Path) -> None:
    result, payload = _run(memex_home, "lrc", "--model", "tiny", "--segment", "4", "--tokens", "64")
    assert result.exit_code == 0, result.output
    assert payload["tokens"] == 64 and payload["segment"] == 4


@pytest.mark.parametrize(
    "args,message",
    [
        (["lrc", "--model", "tiny", "--segment", "0"], "--segment must be a positive"),
        (["lrc", "--model", "tiny", "--segment", "64", "--tokens", "32"], "longer than"),
        (["lrc", "--model", "/nonexistent/ckpt"], "neither tiny, moefied nor"),
        (["predict", "--model", "tiny", "--predictors", "oracle"], "Unknown predictor"),
        (["moefy", "--experts", "16", "--top-k", "16"], "--top-k 16 must be between"),
        (["moefy", "--experts", "1"], "--experts 1 must be between"),
    ],
)
def test_bad_input_is_one_clear_sentence(memex_home: Path, args: list[str], message: str) -> None:
    result, payload = _run(memex_home, *args)
    assert result.exit_code != 0
    assert message in payload["error"]
    assert not (memex_home / "models" / "moefied").exists()  # nothing half-built


def test_moefy_refuses_a_non_empty_output_folder(memex_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result, payload = _run(memex_home, "moefy", "--out", str(out))
    assert result.exit_code != 0 and "not empty" in payload["error"]
    assert (out / "keep.txt").read_text() == "mine" and len(list(out.iterdir())) == 1


def test_ensure_moefied_reuses_a_built_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import inference.moe.tools.moefy as moefy_mod

    folder = tmp_path / "moefied"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(moefy_mod, "moefy", lambda *a, **k: pytest.fail("rebuilt a cached model"))
    assert moefy_mod.ensure_moefied(tmp_path) == folder
