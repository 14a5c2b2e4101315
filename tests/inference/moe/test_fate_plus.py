"""`fate_plus` (our prediction policy), its predictor, and chunked prefill."""

from __future__ import annotations

import pytest
import torch

from inference.moe.engine import load_model
from inference.moe.policies import CacheGeometry, create_policy, policy_names
from inference.moe.policies.fate_plus import FatePlusPolicy
from inference.moe.predictors.predict import create_predictor, evaluate
from inference.moe.predictors.routing_trace import RoutingTrace

PROMPT = [5, 40, 77, 123, 9, 250, 31, 64, 200, 3, 17, 88, 5, 40, 77, 123]


@pytest.fixture(scope="module")
def loaded(tiny_dir, tmp_path_factory):
    model = load_model(tiny_dir["mixtral"], cache_dir=tmp_path_factory.mktemp("fp-cache"))
    yield model
    model.close()


def _run(loaded, policy: str, budget: str = "2x", chunk: int = 0, decode: int = 8):
    model = loaded.build(policy, budget, prefill_chunk=chunk)
    try:
        kv = model.new_kv()
        rows = [model.forward(PROMPT, kv)]
        model.cache.stats.reset()
        model.cache.policy.reset_metrics()
        for _ in range(decode):
            rows.append(model.forward([int(rows[-1][-1].argmax())], kv))
        return torch.cat(rows), model.cache.stats, model.cache.policy.metrics(), model
    finally:
        model.close()


def test_registered_and_shallow_allocation() -> None:
    assert "fate_plus" in policy_names()
    pol = create_policy("fate_plus")
    assert isinstance(pol, FatePlusPolicy)
    pol.setup(CacheGeometry(tuple(range(10)), 8, 2, 60, expert_bytes=1))
    assert pol.resident_layers == 1 and pol.quota(0) == 8  # only layer 0: nothing predicts it
    assert sum(pol.quota(i) for i in range(10)) == 60


def test_fate_plus_is_exact_and_reports_prediction(loaded) -> None:
    ref, *_ = _run(loaded, "resident")
    out, stats, metrics, _ = _run(loaded, "fate_plus", "1x")
    assert torch.equal(out, ref)  # prefetching changes when experts load, never the math
    assert (
        metrics["predictor"] == "wide_map"
    )  # the policy keeps its name, its predictor has its own
    assert 0 < metrics["prediction_accuracy"] <= 1
    assert "prefill_prediction_accuracy" in metrics
    assert stats.prefetch_issued > 0 and stats.prefetch_used > 0


@pytest.mark.parametrize("load_share", [1.0, 0.625])  # load all predicted / the default
def test_prefetch_never_evicts_what_was_just_predicted(loaded, load_share) -> None:
    # 18 slots: layer 0 fits
    model = loaded.build("fate_plus", "0.75", shallow_share=0.5, load_share=load_share)
    try:
        pol, cache = model.cache.policy, model.cache
        assert pol.resident_layers == 1
        kv = model.new_kv()
        model.forward(PROMPT, kv)
        seen = []
        original = pol._prefetch

        def check(cache_, layer, ranked, protect=True):
            available = original(cache_, layer, ranked, protect)
            if protect and ranked.shape[0] == 1:
                # everything predicted and loaded for the next layer is resident or loading
                # now (with load_share < 1 the tail of the ranking is kept, not loaded)
                loaded_part = ranked[0][: pol._load_width(ranked.shape[1])].tolist()
                assert set(loaded_part) <= available[0] <= set(ranked[0].tolist())
                seen.append(layer)
            return available

        pol._prefetch = check
        for t in PROMPT[:4]:
            model.forward([t], kv)
        assert seen
        layer0 = cache.resident_experts(loaded.cfg.moe_layers[0])
        assert len(layer0) == loaded.cfg.num_experts  # the unpredictable first layer is full
    finally:
        model.close()


def test_fate_plus_predictor_uses_the_previous_token() -> None:
    h, e, k = 16, 8, 2
    gen = torch.Generator().manual_seed(0)
    routers = [torch.randn(e, h, generator=gen) for _ in range(3)]
    x = torch.randn(64, h, generator=gen)
    # layer 2 routes like the previous token did, whatever the gate input says
    sticky = torch.tensor([[1, 5]]).expand(64, k)
    experts = [(x @ routers[0].T).topk(k, 1).indices, (x @ routers[1].T).topk(k, 1).indices, sticky]
    trace = RoutingTrace(experts, [x, x, x], routers, k, e)
    gate = evaluate(create_predictor("cross_layer", routers, k, extra=0), trace)
    plus = evaluate(create_predictor("wide_map", routers, k, extra=0), trace)
    assert plus.per_layer[1] > gate.per_layer[1] + 0.05
    assert create_predictor("wide_map", routers, k, extra=-1).width == 2 * k  # default: top-2k


@pytest.mark.parametrize("policy", ["lru", "fate_plus"])
def test_chunked_prefill_matches_unchunked(loaded, policy) -> None:
    whole, *_ = _run(loaded, policy, "1x", chunk=0, decode=3)
    model = loaded.build(policy, "1x", prefill_chunk=5)
    try:
        kv = model.new_kv()
        chunked = model.forward(PROMPT, kv)
        stats = model.cache.stats
        # chunk c+1's experts were requested while chunk c computed
        assert stats.prefetch_issued > 0
        rows = [chunked]
        for _ in range(3):
            rows.append(model.forward([int(rows[-1][-1].argmax())], kv))
    finally:
        model.close()
    out = torch.cat(rows)
    # BLAS results of a row depend on how many rows share the matmul (below ~16), so chunks
    # agree with the whole prompt to float rounding, not bit for bit
    assert torch.allclose(out, whole, atol=1e-4, rtol=0)
    assert torch.equal(out.argmax(-1), whole.argmax(-1))
