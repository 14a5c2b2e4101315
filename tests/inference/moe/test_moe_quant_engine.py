"""`--quant` in the engine: packed experts on the slow tier, in transfer and in the cache."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from app.cli import cli
from inference.moe.engine import load_model
from inference.moe.errors import MoEError
from inference.moe.storage.quant import ExpertCodec
from inference.moe.storage.store import ALIGN, read_header

PROMPT = [5, 40, 77, 123, 9, 250, 31, 64, 200, 3, 17, 88]


@pytest.fixture(scope="module")
def loaded(tiny_dir, tmp_path_factory):
    model = load_model(tiny_dir["mixtral"], cache_dir=tmp_path_factory.mktemp("quant-cache"))
    yield model
    model.close()


def _logits(loaded, policy: str, budget: str = "1x") -> tuple[torch.Tensor, object]:
    model = loaded.build(policy, budget)
    try:
        kv = model.new_kv()
        rows = [model.forward(PROMPT[:8], kv)]
        for t in PROMPT[8:]:
            rows.append(model.forward([t], kv))
        return torch.cat(rows), model.cache.stats
    finally:
        model.close()


def test_int4_and_int8_logits_close_to_fp32(loaded):
    ref, _ = _logits(loaded, "resident")
    for quant, tol in (("int8", 0.02), ("int4", 0.25)):
        q = loaded.with_quant(quant)
        try:
            for policy in ("lru", "resident"):
                out, _ = _logits(q, policy)
                diff = float((out - ref).abs().max())
                cos = float(torch.nn.functional.cosine_similarity(out.flatten(), ref.flatten(), 0))
                assert 0 < diff <= tol, f"{quant}/{policy}: max |dlogit| {diff}"
                assert cos > 0.999, f"{quant}/{policy}: cosine {cos}"
                assert torch.equal(out.argmax(-1), ref.argmax(-1))
        finally:
            q.close()


def test_none_is_bit_exact_and_policies_agree_under_quant(loaded):
    ref, _ = _logits(loaded, "resident")
    same = loaded.with_quant("none")
    try:
        out, _ = _logits(same, "lru")
        assert torch.equal(out, ref)
    finally:
        same.close()
    q = loaded.with_quant("int4")
    try:
        # a packed expert decodes to the same values wherever it was cached: policies agree
        a, _ = _logits(q, "on_demand")
        b, _ = _logits(q, "resident")
        assert torch.equal(a, b)
    finally:
        q.close()


@pytest.mark.parametrize("quant,bits", [("int8", 8), ("int4", 4)])
def test_quant_file_and_bytes_moved(loaded, quant, bits):
    cfg = loaded.cfg
    codec = ExpertCodec(cfg.hidden_size, cfg.expert_dim, bits)
    fp32 = 3 * cfg.hidden_size * cfg.expert_dim * 4
    q = loaded.with_quant(quant)
    try:
        layout, _, offset = read_header(q.slow.path)
        assert layout.bits == bits and layout.nbytes == codec.nbytes
        blob = -(-codec.nbytes // ALIGN) * ALIGN
        assert q.slow.path.stat().st_size == offset + layout.count * blob
        assert codec.nbytes <= (0.3 if bits == 8 else 0.25) * fp32
        _, stats = _logits(q, "on_demand")
        assert stats.loads > 0 and stats.bytes_moved == stats.loads * codec.nbytes
        model = q.build("lru", "2x")
        assert model.cache.fast_tier_bytes == model.cache.fast.slots * codec.nbytes
        model.close()
    finally:
        q.close()


def test_int4_int2_scheme_moves_cold_experts_as_int2(loaded):
    cfg = loaded.cfg
    int4 = ExpertCodec(cfg.hidden_size, cfg.expert_dim, 4).nbytes
    int2 = ExpertCodec(cfg.hidden_size, cfg.expert_dim, 2).nbytes
    q = loaded.with_quant("fate")  # the old name of int4_int2 still opens it
    try:
        assert q.quant == "int4_int2"
        assert q.cold is not None and q.cold.layout.bits == 2 and q.layout.bits == 4
        out, stats = _logits(q, "lru")
        assert stats.cold_loads > 0  # first loads of an expert are not hot yet: INT2
        assert (
            stats.bytes_moved == stats.cold_loads * int2 + (stats.loads - stats.cold_loads) * int4
        )
        ref, _ = _logits(loaded, "resident")
        assert float(torch.nn.functional.cosine_similarity(out.flatten(), ref.flatten(), 0)) > 0.99
    finally:
        q.close()


def test_unknown_quant_is_refused(tiny_dir, tmp_path):
    with pytest.raises(MoEError, match="Unknown expert quantization 'int3'"):
        load_model(tiny_dir["mixtral"], cache_dir=tmp_path, quant="int3")


def test_bench_cli_quant(tiny_dir, memex_home):
    args = [
        "--home",
        str(memex_home),
        "moe",
        "bench",
        "--model",
        str(tiny_dir["olmoe"]),
        "--tokens",
        "3",
        "--prompt-tokens",
        "8",
        "--policies",
        "lru,resident",
        "--reference",
        "resident",
        "--json",
    ]
    result = CliRunner().invoke(cli, [*args, "--quant", "int4"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["quant"] == "int4" and out["expert_bytes_stored"] < out["model"]["expert_bytes"]
    assert out["policies"]["lru"]["max_abs_logit_diff"] == 0.0  # same packed weights as resident
    old = CliRunner().invoke(cli, [*args, "--quant", "fate"])  # int4_int2's old name
    assert old.exit_code == 0, old.output
    assert json.loads(old.stdout.strip().splitlines()[-1])["quant"] == "int4_int2"
    bad = CliRunner().invoke(cli, [*args, "--quant", "int3"])
    assert bad.exit_code != 0
    err = json.loads(bad.stdout.strip().splitlines()[-1])
    assert err["error"] == "Unknown --quant 'int3'; choose one of: none, int8, int4, int4_int2."
    assert "Traceback" not in bad.output


def test_backend_takes_quant_and_prefill_chunk_options(tiny_dir, tmp_path):
    from inference.base import (
        BackendConfig,
        BackendError,
        ChatMessage,
        GenerationParams,
        create_backend,
    )

    options = {
        "moe_model": str(tiny_dir["mixtral"]),
        "moe_policy": "fate_plus",
        "moe_device": "cpu",
        "moe_quant": "int4",
        "moe_prefill_chunk": "4",
        "cache_dir": str(tmp_path / "cache"),
    }
    backend = create_backend("moe", BackendConfig(options=options))
    try:
        assert backend.describe()["quant"] == "int4"
        text = "".join(
            backend.stream([ChatMessage("user", "hi there")], GenerationParams(max_tokens=4))
        )
        assert isinstance(text, str)
        assert list((tmp_path / "cache").glob("experts-*-int4-*.bin"))
    finally:
        backend.close()
    with pytest.raises(BackendError, match="Unknown expert quantization 'int5'"):
        create_backend("moe", BackendConfig(options={**options, "moe_quant": "int5"}))
