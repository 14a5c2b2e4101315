"""Next-layer expert predictors on synthetic routing traces with known structure."""

from __future__ import annotations

import pytest
import torch

from inference.moe.policies import POLICIES, policy_names
from inference.moe.predictors.predict import (
    PREDICTOR_ALIASES,
    PREDICTORS,
    CrossLayerGatePredictor,
    LinearMapPredictor,
    WideMapPredictor,
    create_predictor,
    evaluate,
)
from inference.moe.predictors.routing_trace import RoutingTrace

H, E, K = 16, 8, 2


def _trace(tokens: int, seed: int, drift: torch.Tensor | None = None) -> RoutingTrace:
    """3 layers; layer i+1's gate input = layer i's times `drift` (identity = Fate is exact)."""
    gen = torch.Generator().manual_seed(seed)
    routers = [
        torch.randn(E, H, generator=torch.Generator().manual_seed(100 + i)) for i in range(3)
    ]
    x = torch.randn(tokens, H, generator=gen)
    inputs = []
    for _ in range(3):
        inputs.append(x)
        x = x @ drift if drift is not None else x
    experts = [(xi @ r.T).topk(K, dim=1).indices for xi, r in zip(inputs, routers)]
    return RoutingTrace(experts, inputs, routers, K, E)


def test_registry_has_the_predictors() -> None:
    assert {"cross_layer", "prev_token", "linear_map", "wide_map"} <= set(PREDICTORS)
    with pytest.raises(ValueError, match="Unknown predictor 'oracle'; choose one of: .*cross_la"):
        create_predictor("oracle", _trace(4, 0).routers, K)


def test_predictor_names_are_not_policy_names_and_old_names_still_work() -> None:
    policy_names()  # loads the policy modules that register fate, fate_linear, fate_plus
    assert not set(PREDICTORS) & set(POLICIES)
    routers = _trace(4, 0).routers
    for old, cls in (
        ("fate", CrossLayerGatePredictor),
        ("fate_linear", LinearMapPredictor),
        ("fate_plus", WideMapPredictor),
    ):
        assert PREDICTOR_ALIASES[old] == cls.name
        assert type(create_predictor(old, routers, K)) is cls


def test_cross_layer_gate_is_exact_when_the_gate_input_does_not_change() -> None:
    trace = _trace(64, 0)
    report = evaluate(create_predictor("cross_layer", trace.routers, K, extra=0), trace)
    assert report.accuracy == pytest.approx(1.0)
    assert report.width == K and len(report.per_layer) == 2


def test_prev_token_is_exact_on_constant_routing() -> None:
    trace = _trace(32, 0)
    trace.experts = [torch.tensor([[3, 5]] * 32) for _ in range(3)]
    assert evaluate(create_predictor("prev_token", trace.routers, K), trace).accuracy == 1.0


def test_fitted_map_beats_the_cross_layer_gate_when_the_residual_stream_drifts() -> None:
    # a fixed rotation between layers: Fate reads the wrong coordinates, a fitted map learns it
    q, _ = torch.linalg.qr(torch.randn(H, H, generator=torch.Generator().manual_seed(7)))
    drift = 0.5 * torch.eye(H) + 0.5 * q
    train, held_out = _trace(2048, 1, drift), _trace(512, 2, drift)
    fate = evaluate(create_predictor("cross_layer", train.routers, K), held_out)
    linear = create_predictor("linear_map", train.routers, K)
    linear.fit(train)  # fitted on training tokens only
    ours = evaluate(linear, held_out)
    assert ours.width == fate.width == K + 1
    assert ours.accuracy > fate.accuracy + 0.05


def test_wider_prediction_never_lowers_accuracy() -> None:
    trace = _trace(256, 3, 0.9 * torch.eye(H) + 0.1 * torch.ones(H, H) / H)
    accs = [
        evaluate(create_predictor("cross_layer", trace.routers, K, extra=m), trace).accuracy
        for m in (0, 1, 3)
    ]
    assert accs == sorted(accs)


def test_linear_map_refuses_to_predict_unfitted() -> None:
    trace = _trace(8, 0)
    with pytest.raises(RuntimeError, match="fit"):
        create_predictor("linear_map", trace.routers, K).predict(0, trace.gate_inputs[0])
