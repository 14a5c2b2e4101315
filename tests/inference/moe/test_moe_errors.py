"""Bad input: one clear sentence, a non-zero exit, and nothing half-written left behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import cli
from inference.moe.engine import load_model
from inference.moe.errors import CheckpointError, UnsupportedModel


def bench(home: Path, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(
        cli,
        [
            "--home",
            str(home),
            "moe",
            "bench",
            "--tokens",
            "2",
            "--prompt-tokens",
            "4",
            "--reference",
            "none",
            "--json",
            *args,
        ],
    )
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
    assert lines, result.output
    return result.exit_code, json.loads(lines[-1])


def edit_weights(src: Path, dst: Path, change) -> Path:
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    tensors = load_file(str(src / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(dst / "model.safetensors"))
    return dst


def expert_files(home: Path) -> list[Path]:
    return list((home / "cache" / "moe").glob("*")) if (home / "cache" / "moe").exists() else []


def test_missing_expert_tensor(tiny_dir, tmp_path, memex_home):
    key = "model.layers.1.block_sparse_moe.experts.3.w2.weight"
    folder = edit_weights(tiny_dir["mixtral"], tmp_path / "m", lambda t: t.pop(key))
    code, out = bench(memex_home, "--model", str(folder))
    assert code != 0
    assert out["kind"] == "bad_checkpoint" and key in out["error"] and "missing" in out["error"]
    assert expert_files(memex_home) == []


def test_misshapen_expert_tensor(tiny_dir, tmp_path, memex_home):
    import torch

    key = "model.layers.0.mlp.experts.2.up_proj.weight"

    def change(t):
        t[key] = torch.zeros(5, 7)

    folder = edit_weights(tiny_dir["olmoe"], tmp_path / "o", change)
    code, out = bench(memex_home, "--model", str(folder))
    assert code != 0 and out["kind"] == "bad_checkpoint"
    assert key in out["error"] and "shape [5, 7]" in out["error"]
    assert expert_files(memex_home) == []


def test_unsupported_architecture(tiny_dir, tmp_path, memex_home):
    folder = tmp_path / "llama"
    shutil.copytree(tiny_dir["mixtral"], folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"] = "llama"
    (folder / "config.json").write_text(json.dumps(cfg))
    code, out = bench(memex_home, "--model", str(folder))
    assert code != 0 and out["kind"] == "unsupported_model" and "'llama'" in out["error"]
    with pytest.raises(UnsupportedModel):
        load_model(folder)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_model(tmp_path)


def test_budget_smaller_than_one_layers_active_experts(tiny_dir, memex_home):
    code, out = bench(memex_home, "--model", str(tiny_dir["mixtral"]), "--budget", "1KB")
    assert code != 0 and out["kind"] == "bad_budget"
    assert "smaller than one layer's 2 active experts" in out["error"]


def test_corrupt_expert_file_is_reported_then_rebuilt_after_delete(tiny_dir, memex_home):
    folder = str(tiny_dir["qwen2_moe"])
    code, out = bench(memex_home, "--model", folder, "--policies", "lru")
    assert code == 0, out
    (path,) = expert_files(memex_home)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside an expert blob
    path.write_bytes(bytes(data))
    code, out = bench(memex_home, "--model", folder, "--policies", "resident")
    assert code != 0 and out["kind"] == "corrupt_expert_file"
    assert str(path) in out["error"] and "delete it" in out["error"]
    path.unlink()
    code, out = bench(memex_home, "--model", folder, "--policies", "resident")
    assert code == 0


def test_moefied_not_built_yet_when_building_is_not_allowed(tmp_path):
    # `memex moe bench --model moefied` builds the testbed on first use (minutes); serving
    # paths (the MoE chat backend) never start a build and say what to run instead.
    import pytest

    from inference.moe.errors import ModelNotBuilt
    from inference.moe.resolve import resolve_model

    with pytest.raises(ModelNotBuilt, match="memex moe moefy"):
        resolve_model("moefied", tmp_path / "models", build=False)


def test_unknown_policy(tiny_dir, memex_home):
    code, out = bench(
        memex_home, "--model", str(tiny_dir["mixtral"]), "--policies", "lru,clairvoyant"
    )
    assert code != 0 and "clairvoyant" in out["error"]
