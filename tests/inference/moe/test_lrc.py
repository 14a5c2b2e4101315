"""SRP / SCH on hand-made routing traces whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from inference.moe.tools.lrc import lrc_metrics, segment_cache_hit_rate, segment_srp


def test_constant_routing_is_perfectly_consistent() -> None:
    trace = np.array([[0, 1]] * 8)  # every token uses experts 0 and 1 (k=2)
    assert segment_srp(trace, num_experts=4, segment=4) == pytest.approx(1.0)
    # only the first token's two uses miss (cold cache)
    assert segment_cache_hit_rate(trace, 4, segment=4, capacity=2) == pytest.approx(14 / 16)


def test_alternating_routing() -> None:
    trace = np.array([[0, 1], [2, 3]] * 4)  # T=8, k=2, E=4
    # a 2-token segment uses 4 experts once each: F1(s) = 2s / (2s + 4), best at s=4: 8/12
    assert segment_srp(trace, 4, segment=2) == pytest.approx(2 / 3)
    # capacity 1x (2 experts): every token needs the two the cache just dropped
    assert segment_cache_hit_rate(trace, 4, segment=2, capacity=2) == 0.0
    # capacity 2x holds all four: only the first two tokens miss
    assert segment_cache_hit_rate(trace, 4, segment=2, capacity=4) == pytest.approx(12 / 16)


def test_oracle_evicts_the_expert_least_used_in_the_next_segment() -> None:
    trace = np.array([[0], [1], [2], [0], [0], [1]])  # k=1, capacity 2
    # at t=2 the next 3 tokens use expert 0 twice and 1 once: 1 is evicted, so t=3 and t=4
    # hit (LRU would have evicted 0 and hit once)
    assert segment_cache_hit_rate(trace, 3, segment=3, capacity=2) == pytest.approx(2 / 6)


def test_srp_prefers_the_best_set_size() -> None:
    # segment of 2, k=1: tokens use 0 and 0 -> the set {0} is perfect
    trace = np.array([[0], [0], [0], [1]])
    # segments: [0,0] -> 1.0 ; [0,1] -> s=1: 2*1/(2+2)=0.5, s=2: 2*2/(4+2)=0.667
    assert segment_srp(trace, 2, segment=2) == pytest.approx((1.0 + 2 / 3) / 2)


def test_report_has_overall_and_per_layer_values() -> None:
    layers = [np.array([[0, 1]] * 8), np.array([[0, 1], [2, 3]] * 4)]
    report = lrc_metrics(layers, num_experts=4, segment=2, multiples=(1, 2))
    out = report.to_dict()
    assert set(out["sch"]) == {"1x", "2x"}
    assert out["per_layer"]["0"]["srp"] == pytest.approx(1.0)
    assert out["per_layer"]["1"]["sch"]["2x"] == pytest.approx(0.75)
    assert out["srp"] == pytest.approx((1.0 + 2 / 3) / 2, abs=1e-4)
    assert out["tokens"] == 8


@pytest.mark.parametrize("segment", [0, -3])
def test_bad_segment_is_refused(segment: int) -> None:
    with pytest.raises(ValueError, match="segment"):
        segment_srp(np.array([[0]] * 4), 2, segment)


def test_trace_shorter_than_a_segment_is_refused() -> None:
    with pytest.raises(ValueError, match="fewer than one segment"):
        segment_srp(np.array([[0]] * 4), 2, 16)
