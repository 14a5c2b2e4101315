"""The engine's forward matches transformers (fp32, max |dlogit| <= 1e-3) for every policy."""

from __future__ import annotations

import pytest
import torch

from inference.moe.engine import load_model

POLICIES = ("on_demand", "lru", "lfu", "resident")
PROMPT = [5, 40, 77, 123, 9, 250, 31, 64, 200, 3, 17, 88]


@pytest.mark.parametrize("family", ["mixtral", "olmoe", "qwen2_moe"])
def test_every_policy_matches_transformers(family, tiny_dir, reference_logits, cache_dir):
    folder = tiny_dir[family]
    loaded = load_model(folder, device="cpu", cache_dir=cache_dir)
    try:
        for policy in POLICIES:
            model = loaded.build(policy, "1x")  # the tightest budget: evictions happen
            kv = model.new_kv()
            rows = [
                model.forward(PROMPT[:7], kv),
                model.forward(PROMPT[7:9], kv),
            ]  # prefill in two chunks
            tokens = list(PROMPT[:9])
            for _ in range(5):  # greedy decode, one token at a time through the KV cache
                tokens.append(int(torch.argmax(rows[-1][-1])))
                rows.append(model.forward([tokens[-1]], kv))
            ours = torch.cat(rows)
            ref = reference_logits(folder, tokens)
            assert ours.shape == ref.shape
            diff = float((ours - ref).abs().max())
            assert diff <= 1e-3, f"{family}/{policy}: max |dlogit| {diff}"
            stats = model.cache.stats
            if policy == "on_demand":
                assert stats.hits == 0 and stats.misses > 0
            if policy == "resident":
                assert stats.misses == 0
            model.close()
    finally:
        loaded.close()


def test_generate_matches_transformers_greedy(tiny_dir, cache_dir):
    from transformers import AutoModelForCausalLM

    folder = tiny_dir["mixtral"]
    ref = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    with torch.no_grad():
        expected = ref.generate(
            torch.tensor([PROMPT]),
            max_new_tokens=8,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )[0, len(PROMPT) :].tolist()
    loaded = load_model(folder, cache_dir=cache_dir)
    model = loaded.build("lru", "2x")
    try:
        assert list(model.generate(PROMPT, 8)) == expected
    finally:
        model.close()
        loaded.close()


def test_fused_experts_on_disk_load_the_same(tiny_dir, tmp_path, cache_dir):
    """A checkpoint saved in transformers 5.x's fused layout serves identically."""
    import shutil

    from safetensors.torch import load_file, save_file

    src = tiny_dir["olmoe"]
    dst = tmp_path / "fused"
    shutil.copytree(src, dst)
    tensors = load_file(str(src / "model.safetensors"))
    from inference.moe.config import FAMILIES, from_hf_config, load_hf_config

    cfg = from_hf_config(load_hf_config(src))
    for layer in cfg.moe_layers:
        gu, dn = FAMILIES["olmoe"].fused_keys(layer)
        keys = [FAMILIES["olmoe"].expert_keys(layer, e) for e in range(cfg.num_experts)]
        tensors[gu] = torch.stack([torch.cat([tensors[g], tensors[u]]) for g, u, _ in keys])
        tensors[dn] = torch.stack([tensors[d] for _, _, d in keys])
        for triple in keys:
            for k in triple:
                del tensors[k]
    save_file(tensors, str(dst / "model.safetensors"))
    a, b = load_model(src, cache_dir=cache_dir / "a"), load_model(dst, cache_dir=cache_dir / "b")
    try:
        ma, mb = a.build("lru", "2x"), b.build("lru", "2x")
        assert torch.equal(ma.forward(PROMPT, ma.new_kv()), mb.forward(PROMPT, mb.new_kv()))
        ma.close()
        mb.close()
    finally:
        a.close()
        b.close()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_transformers(tiny_dir, reference_logits, cache_dir):
    folder = tiny_dir["mixtral"]
    loaded = load_model(folder, device="cuda", dtype="float32", cache_dir=cache_dir)
    try:
        ref = reference_logits(folder, PROMPT)
        for policy in POLICIES:
            model = loaded.build(policy, "1x")
            ours = model.forward(PROMPT, model.new_kv()).cpu()
            assert float((ours - ref).abs().max()) <= 1e-3, policy
            model.close()
    finally:
        loaded.close()


def test_sharded_checkpoint_loads_the_same(tiny_dir, tmp_path, cache_dir):
    """A checkpoint split into shards with model.safetensors.index.json serves identically."""
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    src = tiny_dir["mixtral"]
    dst = tmp_path / "sharded"
    shutil.copytree(src, dst)
    (dst / "model.safetensors").unlink()
    tensors = load_file(str(src / "model.safetensors"))
    keys = sorted(tensors)
    shards = {
        "model-00001-of-00002.safetensors": keys[::2],
        "model-00002-of-00002.safetensors": keys[1::2],
    }
    weight_map = {}
    for name, part in shards.items():
        save_file({k: tensors[k] for k in part}, str(dst / name))
        weight_map.update({k: name for k in part})
    (dst / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    a, b = load_model(src, cache_dir=cache_dir / "a"), load_model(dst, cache_dir=cache_dir / "b")
    try:
        ma, mb = a.build("lfu", "2x"), b.build("lfu", "2x")
        assert torch.equal(ma.forward(PROMPT, ma.new_kv()), mb.forward(PROMPT, mb.new_kv()))
        ma.close()
        mb.close()
    finally:
        a.close()
        b.close()
