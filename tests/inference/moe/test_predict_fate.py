"""The `fate` / `fate_linear` cache policies: allocation, ARC, and a real bench run."""

from __future__ import annotations

import json

from click.testing import CliRunner

from app.cli import cli
from inference.moe.policies import CacheGeometry, create_policy, policy_names
from inference.moe.policies.fate import FatePolicy, _Arc


def _geometry(layers: int, experts: int, top_k: int, slots: int) -> CacheGeometry:
    return CacheGeometry(tuple(range(layers)), experts, top_k, slots, expert_bytes=1)


def test_policies_are_registered() -> None:
    assert {"fate", "fate_linear"} <= set(policy_names())
    assert isinstance(create_policy("fate"), FatePolicy)


def test_shallow_favoring_allocation() -> None:
    pol = create_policy("fate")
    pol.setup(_geometry(layers=10, experts=8, top_k=2, slots=60))
    # first layers fully resident while they take at most a third of the slots (2 x 8 <= 20)
    assert [pol.quota(i) for i in range(2)] == [8, 8]
    assert pol.resident_layers == 2
    assert sum(pol.quota(i) for i in range(10)) == 60
    assert {pol.quota(i) for i in range(2, 10)} <= {5, 6}


def test_allocation_keeps_every_layer_fed_on_a_small_budget() -> None:
    pol = create_policy("fate")
    pol.setup(_geometry(layers=4, experts=64, top_k=8, slots=64))  # 2x of... 4 layers: too small
    assert pol.resident_layers == 0 and [pol.quota(i) for i in range(4)] == [16, 16, 16, 16]


def test_arc_prefers_evicting_one_off_experts() -> None:
    arc = _Arc(capacity=3)
    for e in (1, 2, 3):
        arc.inserted(e)
    arc.touched(1)  # expert 1 is used again: frequency list
    assert arc.victim([1, 2, 3]) == 2  # oldest of the once-used ones
    arc.evicted(2)
    arc.inserted(2)  # a ghost hit in B1 grows T1's target and lands in T2
    assert arc.p >= 1 and 2 in arc.t2


def test_fate_policies_in_a_bench_run_stay_exact(tiny_dir, memex_home) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "--home",
            str(memex_home),
            "moe",
            "bench",
            "--model",
            str(tiny_dir["mixtral"]),
            "--budget",
            "2x",
            "--tokens",
            "6",
            "--prompt-tokens",
            "16",
            "--device",
            "cpu",
            "--policies",
            "lru,fate,fate_linear",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    for name, predictor in (("fate", "cross_layer"), ("fate_linear", "linear_map")):
        r = out["policies"][name]  # bench output keeps the policy names
        assert r["predictor"] == predictor  # predictors have names of their own
        assert r["max_abs_logit_diff"] is not None and r["max_abs_logit_diff"] <= 1e-3
        assert 0 <= r["prediction_accuracy"] <= 1
        assert set(r["per_layer_prediction_accuracy"]) <= {
            str(i) for i in range(1, out["model"]["layers"])
        }
        assert r["prefetch_issued"] >= 0 and "prefetch_bytes_wasted" in r
