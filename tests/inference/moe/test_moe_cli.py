"""`memex moe bench --json`: the stable output contract."""

from __future__ import annotations

import json

from click.testing import CliRunner

from app.cli import cli

POLICY_KEYS = {
    "prefill_tok_s",
    "decode_tok_s",
    "hit_rate",
    "bytes_moved",
    "stall_ms",
    "fast_tier_bytes",
    "max_abs_logit_diff",
}


def test_bench_json_contract(tiny_dir, memex_home):
    result = CliRunner().invoke(
        cli,
        [
            "--home",
            str(memex_home),
            "moe",
            "bench",
            "--model",
            str(tiny_dir["olmoe"]),
            "--budget",
            "2x",
            "--tokens",
            "4",
            "--prompt-tokens",
            "16",
            "--device",
            "cpu",
            "--policies",
            "on_demand,lru,lfu,resident",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(out["model"]) >= {"name", "layers", "experts", "top_k", "expert_bytes"}
    assert out["model"]["experts"] == 8 and out["model"]["top_k"] == 2
    assert out["device"] == "cpu" and 0 < out["budget_fraction"] <= 1
    assert list(out["policies"]) == ["on_demand", "lru", "lfu", "resident"]
    for name, run in out["policies"].items():
        assert POLICY_KEYS <= set(run), name
        assert run["max_abs_logit_diff"] <= 1e-3, name
    assert out["policies"]["on_demand"]["hit_rate"] == 0.0
    assert out["policies"]["resident"]["hit_rate"] == 1.0
    assert (
        out["policies"]["resident"]["fast_tier_bytes"] > out["policies"]["lru"]["fast_tier_bytes"]
    )
    assert out["peak_rss_mb"] > 0


def test_bench_human_output(tiny_dir, memex_home):
    result = CliRunner().invoke(
        cli,
        [
            "--home",
            str(memex_home),
            "moe",
            "bench",
            "--model",
            str(tiny_dir["mixtral"]),
            "--tokens",
            "2",
            "--prompt-tokens",
            "4",
            "--policies",
            "lru",
            "--reference",
            "resident",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "lru" in result.stdout and "decode/s" in result.stdout


def test_moe_group_help_loads_no_torch():
    import subprocess
    import sys

    code = (
        "import sys; from click.testing import CliRunner; from app.cli import cli; "
        "r = CliRunner().invoke(cli, ['moe', '--help']); assert r.exit_code == 0, r.output; "
        "assert 'bench' in r.output; assert 'torch' not in sys.modules, 'torch loaded'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_model_tiny_is_built_on_first_use(memex_home, monkeypatch):
    from inference.moe.tools import tiny

    monkeypatch.setitem(tiny.SIZES, "bench", tiny.SIZES["test"])  # keep the test small
    args = [
        "--home",
        str(memex_home),
        "moe",
        "bench",
        "--model",
        "tiny-qwen2_moe",
        "--tokens",
        "2",
        "--prompt-tokens",
        "4",
        "--policies",
        "lru",
        "--json",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["model"]["name"] == "tiny-qwen2_moe-bench"
    assert (memex_home / "models" / "tiny-qwen2_moe-bench" / "config.json").is_file()


def test_cuda_without_a_gpu_is_one_sentence(tiny_dir, memex_home):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    args = [
        "--home",
        str(memex_home),
        "moe",
        "bench",
        "--model",
        str(tiny_dir["mixtral"]),
        "--device",
        "cuda",
        "--json",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert "no CUDA GPU" in out["error"]


def test_bench_rounds_report_median_speeds(tiny_dir, memex_home):
    """--rounds 3: each policy runs three times, interleaved; its speed is the median."""
    import statistics

    result = CliRunner().invoke(
        cli,
        [
            "--home",
            str(memex_home),
            "moe",
            "bench",
            "--model",
            str(tiny_dir["mixtral"]),
            "--tokens",
            "3",
            "--prompt-tokens",
            "8",
            "--policies",
            "lru,resident",
            "--reference",
            "resident",
            "--rounds",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["rounds"] == 3
    for name, run in out["policies"].items():
        speeds = run["decode_tok_s_rounds"]
        assert len(speeds) == 3 and len(run["prefill_tok_s_rounds"]) == 3, name
        assert abs(run["decode_tok_s"] - statistics.median(speeds)) <= 1e-3 * run["decode_tok_s"]
    assert out["policies"]["lru"]["max_abs_logit_diff"] == 0.0  # round 1's logits compared


def test_bench_rounds_out_of_range_is_refused(tiny_dir, memex_home):
    result = CliRunner().invoke(
        cli,
        [
            "--home",
            str(memex_home),
            "moe",
            "bench",
            "--model",
            str(tiny_dir["mixtral"]),
            "--rounds",
            "0",
            "--json",
        ],
    )
    assert result.exit_code != 0
    assert "--rounds" in result.output
