"""The real-size testbed's code path at tiny size: weights on disk, routing replayed, fused
compute, the GGUF llama.cpp runs."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from app.cli import cli
from inference.moe.errors import MoEError
from inference.moe.tools.testbed import ensure_testbed, load_testbed, write_trace

PROMPT = [5, 40, 77, 123, 9, 250, 31, 64]


def _run(loaded, policy, budget="2x", steps=4):
    model = loaded.build(policy, budget)
    try:
        kv = model.new_kv()
        rows = [model.forward(PROMPT, kv)]
        for _ in range(steps):
            rows.append(model.forward([int(torch.argmax(rows[-1][-1]))], kv))
        return torch.cat(rows), model.cache.stats, model.cache.policy.metrics(), model.compute
    finally:
        model.close()


@pytest.fixture(scope="module")
def testbed(tmp_path_factory):
    return ensure_testbed("olmoe-tiny", tmp_path_factory.mktemp("testbeds"))


@pytest.fixture(scope="module")
def trace(tiny_dir, tmp_path_factory):
    # the tiny OLMoE checkpoint stands in for the MoEfied model: 3 layers of 8 experts
    return write_trace(
        tiny_dir["olmoe"], tmp_path_factory.mktemp("trace"), tokens=64, first=0, layers=3
    )


def test_testbed_is_written_once_and_policies_agree(testbed):
    assert ensure_testbed("olmoe-tiny", testbed.parent) == testbed  # reused, not rewritten
    loaded = load_testbed(testbed, routing="random")
    try:
        ref, _, _, compute = _run(loaded, "resident")
        assert compute == "fused"
        for policy in ("on_demand", "lru"):
            out, stats, _, _ = _run(loaded, policy)
            assert torch.equal(out, ref), policy  # bit-identical whatever was cached
            assert stats.loads > 0
        loaded.compute = "loop"
        loop, _, _, compute = _run(loaded, "lru")
        assert compute == "loop"
        assert float((loop.float() - ref.float()).abs().max()) <= 0.05 * float(
            ref.float().abs().max()
        )
    finally:
        loaded.close()


def test_trace_routing_is_replayed_and_predicted(testbed, trace):
    from safetensors import safe_open

    loaded = load_testbed(testbed, routing="trace", trace=trace.parent)
    try:
        with safe_open(str(trace), framework="pt") as f:
            logits = f.get_tensor("logits.1")
        w, ids, gate = loaded.routing.route(1, 3, torch.zeros(1, 64, dtype=torch.bfloat16))
        assert ids.tolist() == [torch.topk(logits[3], 2).indices.tolist()]
        assert gate.shape[1] == loaded.predictor_routers[1].shape[1]  # the trace's gate input
        ref, _, _, _ = _run(loaded, "resident")
        out, stats, metrics, _ = _run(loaded, "fate_plus")
        assert torch.equal(out, ref)
        assert metrics["prediction_accuracy"] is not None and stats.prefetch_issued > 0
    finally:
        loaded.close()


def test_bad_routing_is_refused(testbed, tmp_path):
    with pytest.raises(MoEError, match="No routing trace"):
        load_testbed(testbed, routing="trace", trace=tmp_path)
    with pytest.raises(MoEError, match="Unknown routing"):
        load_testbed(testbed, routing="sideways")


def test_bench_cli_testbed(testbed, trace, memex_home):
    env = {"MEMEX_MOE_TESTBED_DIR": str(testbed.parent)}
    args = [
        "--home",
        str(memex_home),
        "moe",
        "bench",
        "--testbed",
        "olmoe-tiny",
        "--tokens",
        "3",
        "--prompt-tokens",
        "6",
        "--policies",
        "on_demand,lru,resident",
        "--rounds",
        "2",
        "--json",
    ]
    result = CliRunner(env=env).invoke(cli, [*args, "--routing", f"trace:{trace}"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["testbed"] == "olmoe-tiny" and out["trace"]["layers"] == 3
    lru = out["policies"]["lru"]
    assert len(lru["decode_tok_s_rounds"]) == 2 and lru["max_abs_logit_diff"] == 0.0
    assert lru["bytes_moved_per_token"] >= 0 and lru["peak_rss_mb"] > 0
    bad = CliRunner(env=env).invoke(cli, [*args, "--routing", "sideways"])
    assert bad.exit_code != 0
    assert "Unknown --routing" in json.loads(bad.stdout.strip().splitlines()[-1])["error"]


def test_gguf_export_runs_in_llama_cpp_with_the_same_logits(testbed):
    np = pytest.importorskip("numpy")
    llama_cpp = pytest.importorskip("llama_cpp")
    from inference.moe.tools.gguf_export import write_testbed_gguf

    path = write_testbed_gguf(testbed)
    assert write_testbed_gguf(testbed) == path  # reused
    loaded = load_testbed(testbed, routing="model")  # llama.cpp routes with the same routers
    try:
        model = loaded.build("resident")
        ours = model.forward(PROMPT, model.new_kv()).float()
        model.close()
    finally:
        loaded.close()
    llm = llama_cpp.Llama(
        model_path=str(path), n_ctx=64, n_threads=1, logits_all=True, verbose=False, use_mmap=False
    )
    llm.eval(PROMPT)
    ref = torch.tensor(np.array(llm.scores[: len(PROMPT)]))
    assert float((ours - ref).abs().max()) < 0.02 * float(ref.abs().max())  # bf16 rounding only
    assert torch.equal(ours.argmax(-1), ref.argmax(-1))
