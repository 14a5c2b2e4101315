"""A LoRA-personalised model served through MoE offloading, end to end on tiny models.

A tiny dense Llama (as a GGUF, q/k rows permuted as llama.cpp stores them) is MoEfied, a
LoRA is trained on the dense base for a few steps with finetune, and the MoE engine serves
the MoEfied model with that adapter's GGUF file. The reference is transformers running the
MoEfied checkpoint with the same adapter applied by peft (which, like the engine, adapts the
attention and leaves the experts alone: they have no dense FFN to adapt); the adapter's effect
is also compared with its effect on the dense base.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inference.base import BackendConfig, ChatMessage, GenerationParams, create_backend

PROMPT = "<|im_start|>user\nWhere do I live now?<|im_end|>\n<|im_start|>assistant\n"
NEW_TOKENS = 8


@pytest.fixture(scope="module")
def personal(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """tiny dense base -> MoEfied model + a LoRA trained on the dense base (~30 s on 2 cores)."""
    from finetune import TrainConfig
    from finetune.data import synthesize, write_jsonl
    from finetune.trainer import train
    from inference.moe.tools.moefy import MoefyOptions, moefy
    from tests.finetune.tiny_model import build_tiny, sample_memories

    root = tmp_path_factory.mktemp("moe-adapter")
    tiny = build_tiny(root)  # hidden 64, FFN 128, 2 layers
    folder = root / "moefied"
    moefy(
        folder,
        MoefyOptions(experts=8, top_k=2, train_tokens=512, eval_tokens=256, seq_len=128),
        gguf=tiny.gguf,
    )
    data = write_jsonl(synthesize(sample_memories()), root / "dataset.jsonl")
    result = train(
        TrainConfig(
            base_model=str(tiny.gguf),
            dataset=str(data),
            work_dir=str(root / "work"),
            cache_dir=str(root / "base-cache"),
            steps=6,
            batch=4,
            seq_len=128,
            lr=2e-2,
            threads=1,
            checkpoint_every=100,
        ),
        lambda event: None,
    )
    assert result.loss_last < result.loss_first
    return {
        "folder": folder,
        "gguf": Path(result.adapter_gguf),
        "peft": Path(result.adapter_dir),
        "tiny": tiny,
    }


def _prompt_ids(folder: Path) -> list[int]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    return list(tok(PROMPT, add_special_tokens=False)["input_ids"])


def _reference(folder: Path, adapter: Path | None, ids: list[int]) -> tuple[Any, list[int]]:
    """transformers (+ peft): teacher-forced logits [T, V] and greedy new tokens."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter)).eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
        seq = list(ids)
        for _ in range(NEW_TOKENS):  # plain greedy steps, no generation config involved
            seq.append(int(model(input_ids=torch.tensor([seq])).logits[0, -1].argmax()))
    return logits, seq[len(ids) :]


def _engine(
    folder: Path, adapter: Path | None, ids: list[int], cache: Path
) -> tuple[Any, list[int], Any]:
    from inference.moe.engine import load_model

    loaded = load_model(folder, device="cpu", cache_dir=cache, adapter=adapter)
    try:
        model = loaded.build("lru", "2x")
        try:
            logits = model.forward(ids, model.new_kv())
            tokens = list(model.generate(ids, NEW_TOKENS))
        finally:
            model.close()
    finally:
        loaded.close()
    return logits, tokens, loaded.adapter


def test_moe_engine_serves_the_adapter_as_peft_applies_it(personal, tmp_path) -> None:
    folder, ids = personal["folder"], _prompt_ids(personal["folder"])
    want, want_tokens = _reference(folder, personal["peft"], ids)
    got, got_tokens, report = _engine(folder, personal["gguf"], ids, tmp_path / "cache")
    plain, plain_tokens, none = _engine(folder, None, ids, tmp_path / "cache")
    ref_plain, _ = _reference(folder, None, ids)

    assert none is None
    # 2 layers x q/k/v/o merged; the adapter's gate/up/down (dense FFN) have no place in experts
    assert report.attention == 8 and report.dense_mlp == 0 and report.skipped_experts == 6
    # the engine with the adapter computes what peft computes (the GGUF's permuted q/k undone)
    err = float((got - want).abs().max())
    assert err < 1e-4 * max(1.0, float(want.abs().max()))
    assert got_tokens == want_tokens
    # and the adapter matters: without it the engine is the plain MoEfied model
    assert float((plain - ref_plain).abs().max()) < 1e-4 * max(1.0, float(ref_plain.abs().max()))
    assert float((got - plain).abs().max()) > 1000 * err
    assert float((got - plain).abs().max()) > 0.05
    assert got_tokens != plain_tokens
    # the personalisation carries over: the adapter moves the MoEfied model's logits the way it
    # moves the dense base's (transformers + peft on the dense model; measured cosine 0.95)
    import torch

    dense = personal["tiny"].hf_dir
    dense_adapted, _ = _reference(dense, personal["peft"], ids)
    dense_plain, _ = _reference(dense, None, ids)
    cos = torch.nn.functional.cosine_similarity(
        (got - plain).flatten(), (dense_adapted - dense_plain).flatten(), dim=0
    )
    assert float(cos) > 0.7


def test_lora_scale_zero_is_the_plain_model(personal, tmp_path) -> None:
    from inference.moe.engine import load_model

    folder, ids = personal["folder"], _prompt_ids(personal["folder"])
    plain, _, _ = _engine(folder, None, ids, tmp_path / "cache")
    loaded = load_model(
        folder, device="cpu", cache_dir=tmp_path / "cache", adapter=personal["gguf"], lora_scale=0.0
    )
    try:
        model = loaded.build("resident")
        assert float((model.forward(ids, model.new_kv()) - plain).abs().max()) < 1e-5
        model.close()
    finally:
        loaded.close()


def test_moe_backend_applies_the_config_adapter(personal, tmp_path) -> None:
    folder = personal["folder"]
    opts = {"moe_model": str(folder), "moe_device": "cpu", "cache_dir": str(tmp_path / "c")}
    msgs, params = [ChatMessage("user", "Where do I live now?")], GenerationParams(max_tokens=6)
    config = BackendConfig(adapter_path=str(personal["gguf"]), options=opts)
    with create_backend("moe", config) as b:
        info = b.describe()
        adapted = list(b.stream(msgs, params))
    assert info["adapter"] == "adapter.gguf" and "8 attention" in info["adapter_applied"]
    with create_backend("moe", BackendConfig(options=opts)) as b:
        assert b.describe()["adapter"] == ""
        plain = list(b.stream(msgs, params))
    # the reply as peft's greedy decoding of the same chat prompt gives it
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    ids = tok(
        tok.apply_chat_template(
            [{"role": "user", "content": msgs[0].content}],
            tokenize=False,
            add_generation_prompt=True,
        ),
        add_special_tokens=False,
    )["input_ids"]
    _, tokens = _reference(folder, personal["peft"], list(ids))
    stops = {tok.eos_token_id}
    kept = []
    for t in tokens[:6]:
        if t in stops:
            break
        kept.append(t)
    assert "".join(adapted) == tok.decode(kept, skip_special_tokens=True)
    assert adapted != plain


def test_runtime_serves_the_active_adapter_through_the_moe_backend(personal, memex_home) -> None:
    from app.adapters import AdapterStore
    from app.runtime import Runtime
    from app.settings import load_settings

    settings = load_settings(
        memex_home, backend="moe", moe_model=str(personal["folder"]), moe_device="cpu"
    )
    store = AdapterStore(settings)
    version = store.add(
        {"adapter.gguf": personal["gguf"]}, {"base_model": str(personal["tiny"].gguf)}
    )
    rt = Runtime(settings)
    try:
        assert rt.backend.describe()["adapter"] == ""  # nothing active yet
        store.activate(version)
        info = rt.backend.describe()  # reloaded: the active adapter changed
        assert info["backend"] == "moe" and info["adapter"] == "adapter.gguf"
        assert rt.adapter_path() == str(settings.adapters_dir / version / "adapter.gguf")
        store.rollback()
        assert rt.backend.describe()["adapter"] == ""
    finally:
        rt.close()


def test_an_adapter_for_another_model_is_one_clear_error(personal, tmp_path) -> None:
    from inference.base import BackendError
    from inference.moe.tools.tiny import build_tiny

    other = build_tiny(
        tmp_path / "other",
        "olmoe",
        dict(
            vocab=320, hidden=32, layers=2, heads=4, kv_heads=2, experts=4, top_k=2, expert_dim=16
        ),
    )
    opts = {"moe_model": str(other), "moe_device": "cpu", "cache_dir": str(tmp_path / "c")}
    with pytest.raises(BackendError, match="does not fit the MoE model .* trained on another"):
        create_backend("moe", BackendConfig(adapter_path=str(personal["gguf"]), options=opts))
    with pytest.raises(BackendError, match="not a GGUF LoRA adapter|not a readable GGUF"):
        create_backend("moe", BackendConfig(adapter_path=str(personal["tiny"].gguf), options=opts))


def test_dense_mlp_layers_take_their_lora(tiny_dir, tmp_path) -> None:
    """Qwen2-MoE's mlp_only_layers keep a dense MLP: its gate/up/down LoRA is merged too."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from finetune.export import export_gguf_lora
    from finetune.model import BaseInfo
    from inference.moe.engine import load_model

    folder = tiny_dir["qwen2_moe"]
    cfg = AutoConfig.from_pretrained(str(folder))
    dense = cfg.mlp_only_layers[0]
    targets = [
        f"model.layers.{i}.self_attn.{m}"
        for i in range(cfg.num_hidden_layers)
        for m in ("q_proj", "k_proj", "v_proj", "o_proj")
    ]
    targets += [f"model.layers.{dense}.mlp.{m}" for m in ("gate_proj", "up_proj", "down_proj")]
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    torch.manual_seed(3)
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=targets, lora_dropout=0.0, bias="none")
    )
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.2)
    peft_model.save_pretrained(str(tmp_path / "hf"))
    # exported with the llama name map (gguf's qwen2moe map has no dense-MLP names): q/k rows
    # permuted as llama.cpp stores llama models, which the engine undoes
    info = BaseInfo(
        tmp_path,
        "llama",
        True,
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.num_hidden_layers,
        str(folder),
    )
    gguf = export_gguf_lora(tmp_path / "hf", info, tmp_path / "adapter.gguf")
    ids = [5, 17, 42, 9, 100, 3, 77]
    with torch.no_grad():
        want = peft_model.eval()(input_ids=torch.tensor([ids])).logits[0]
        base = peft_model.get_base_model()
        with peft_model.disable_adapter():
            plain = base(input_ids=torch.tensor([ids])).logits[0]
    loaded = load_model(folder, device="cpu", cache_dir=tmp_path / "cache", adapter=gguf)
    try:
        assert loaded.adapter is not None and loaded.adapter.dense_mlp == 3
        assert loaded.adapter.attention == 4 * cfg.num_hidden_layers
        m = loaded.build("lru", "2x")
        got = m.forward(ids, m.new_kv())
        m.close()
    finally:
        loaded.close()
    assert float((got - want).abs().max()) < 1e-4
    assert float((want - plain).abs().max()) > 1e-2
