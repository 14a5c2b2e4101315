"""`memex train / eval / adapters` end to end on a tiny model (real SQLite, llama.cpp, child
process)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.finetune.tiny_model import TinyModel, build_tiny

NOTES = [
    ("I moved to Hamburg and live in Altona.", datetime(2016, 10, 3)),
    ("I started working at Nordlicht Logistics as a data analyst.", datetime(2016, 11, 1)),
    ("We adopted a grey cat and named her Pixel.", datetime(2020, 4, 4)),
    ("My sister Lena got her PhD in astrophysics from Heidelberg.", datetime(2018, 3, 2)),
]
FAST = ["--steps", "2", "--seq-len", "128", "--batch", "2"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The converted base model, shared by every test home (conversion costs seconds)."""
    return tmp_path_factory.mktemp("base-cache")


@pytest.fixture
def home(
    memex_home: Path, store, tiny: TinyModel, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    from app.training import CACHE_DIR

    monkeypatch.setenv("MEMEX_MODEL_PATH", str(tiny.gguf))
    monkeypatch.setenv("MEMEX_THREADS", "1")
    (memex_home / "adapters").mkdir(parents=True, exist_ok=True)
    (memex_home / "adapters" / CACHE_DIR).symlink_to(shared_cache, target_is_directory=True)
    for text, at in NOTES:
        store.remember(text, at=at)
    return memex_home


@pytest.fixture(scope="module")
def trained_v1(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Filled in by the first test that trains v0001; later tests copy it instead of training."""
    return {}


def with_v1(home: Path, trained_v1: dict[str, Path]) -> None:
    import shutil

    from app.adapters import AdapterStore
    from app.settings import load_settings

    if "v0001" not in trained_v1:
        code, out = memex("train", *FAST, "--no-merge")
        assert code == 0, out
        keep = home.parent / "v0001-copy"
        shutil.copytree(home / "adapters" / "v0001", keep)
        trained_v1["v0001"] = keep
    else:
        shutil.copytree(trained_v1["v0001"], home / "adapters" / "v0001")
        AdapterStore(load_settings(home=home)).activate("v0001")


def memex(*args: str) -> tuple[int, dict]:
    from app.cli import cli

    result = CliRunner().invoke(cli, ["--json", *args], catch_exceptions=False)
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
    return result.exit_code, json.loads(lines[-1]) if lines else {}


def active(home: Path) -> str | None:
    from app.adapters import AdapterStore
    from app.settings import load_settings

    return AdapterStore(load_settings(home=home)).active()


def test_train_with_no_memories_says_so(memex_home: Path, tiny: TinyModel, monkeypatch) -> None:
    monkeypatch.setenv("MEMEX_MODEL_PATH", str(tiny.gguf))
    code, out = memex("train", *FAST)
    assert code != 0 and out["kind"] == "no_memories" and "no memories" in out["error"]


def test_max_gpu_gb_needs_the_cpu_policy(memex_home: Path) -> None:
    from app.cli import cli

    result = CliRunner().invoke(cli, ["train", "--offload", "disk", "--max-gpu-gb", "2"])
    assert (
        result.exit_code == 2 and "--max-gpu-gb: it applies to --offload cpu only" in result.stderr
    )


def test_train_eval_activate_rollback(home: Path, trained_v1: dict[str, Path]) -> None:
    from app.adapters import AdapterStore, active_adapter_path, active_merged_model_path
    from app.settings import load_settings

    code, out = memex("train", *FAST)
    assert code == 0, out
    assert {
        "adapter",
        "version",
        "steps",
        "loss_first",
        "loss_last",
        "peak_rss_mb",
        "peak_gpu_mb",
        "train_tok_s",
    } <= set(out)
    assert out["version"] == "v0001" and out["steps"] == 2 and Path(out["adapter"]).exists()
    v1 = home / "adapters" / "v0001"
    assert {"adapter.gguf", "dataset.jsonl", "metrics.json", "adapter_hf"} <= {
        p.name for p in v1.iterdir()
    }
    assert active_adapter_path(load_settings(home=home)) == str(v1 / "adapter.gguf")
    assert active_merged_model_path(load_settings(home=home)) == str(v1 / "merged.gguf")
    trained_v1["v0001"] = home.parent / "v0001-copy"
    import shutil

    shutil.copytree(v1, trained_v1["v0001"])

    code, out = memex("eval")
    assert code == 0, out
    assert out["n"] > 0 and "qa_accuracy" in out["base"] and "qa_accuracy" in out["adapter"]
    assert {"base", "adapter", "n"} <= set(out["abstention"])
    assert AdapterStore(load_settings(home=home)).metrics("v0001")["eval"]["n"] == out["n"]

    code, out = memex("train", *FAST, "--no-merge")
    assert code == 0 and out["version"] == "v0002" and active(home) == "v0002"
    code, out = memex("adapters", "list")
    assert [a["version"] for a in out["adapters"]] == ["v0001", "v0002"] and out[
        "active"
    ] == "v0002"
    code, out = memex("adapters", "rollback")
    assert code == 0 and out["active"] == "v0001" and active(home) == "v0001"
    code, out = memex("adapters", "activate", "v0002")
    assert code == 0 and active(home) == "v0002"
    code, out = memex("adapters", "activate", "v0009")
    assert code != 0 and out["kind"] == "not_found"


def test_bad_inputs_keep_the_active_adapter(
    home: Path, trained_v1, tmp_path: Path, monkeypatch
) -> None:
    with_v1(home, trained_v1)
    assert active(home) == "v0001"

    code, out = memex("train", "--prepare")
    assert code == 0 and out["examples"] > 0
    edited = Path(out["dataset"])
    lines = edited.read_text().splitlines()
    lines[1] = lines[1].replace('"question":', '"question"')  # a hand edit that broke the JSON
    edited.write_text("\n".join(lines) + "\n")
    code, out = memex("train", "--dataset", str(edited), *FAST)
    assert code != 0 and "line 2 is not valid JSON" in out["error"] and active(home) == "v0001"

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    monkeypatch.setenv("MEMEX_MODEL_PATH", str(broken))
    code, out = memex("train", *FAST)
    assert code != 0 and "cannot load the base model" in out["error"] and active(home) == "v0001"
    monkeypatch.setenv("MEMEX_MODEL_PATH", str(home.parent / "missing.gguf"))
    code, out = memex("train", *FAST)
    assert code != 0 and out["error"] and active(home) == "v0001"


def test_interrupted_save_keeps_the_active_adapter(home: Path, trained_v1, monkeypatch) -> None:
    import shutil

    with_v1(home, trained_v1)
    assert active(home) == "v0001"
    real_copy = shutil.copy2

    def disk_full(src, dst, *a, **kw):
        if str(src).endswith(".gguf"):
            raise OSError(28, "No space left on device")
        return real_copy(src, dst, *a, **kw)

    monkeypatch.setattr(shutil, "copy2", disk_full)
    code, out = memex("train", *FAST, "--no-merge")
    assert code != 0 and "previous adapter stays active" in out["error"]
    assert active(home) == "v0001"
    assert sorted(
        p.name for p in (home / "adapters").iterdir() if p.name.startswith(("v", ".v"))
    ) == ["v0001"]


def test_runtime_serves_the_active_adapter_and_rolls_back(
    home: Path, tiny: TinyModel, shared_cache: Path, monkeypatch
) -> None:
    """activate -> the running Runtime answers with the adapter; roll back -> as before."""
    import torch
    from transformers import AutoModelForCausalLM

    from app import adapters
    from app.runtime import Runtime
    from app.settings import load_settings
    from finetune.export import export_gguf_lora, save_hf_adapter
    from finetune.merge import merge_lora
    from finetune.model import add_lora, prepare_base

    torch.manual_seed(1)  # a random B: a 2-step adapter on a tiny model barely moves its answers
    peft_model = add_lora(
        AutoModelForCausalLM.from_pretrained(str(tiny.hf_dir)),
        8,
        16.0,
        ("q_proj", "v_proj", "up_proj", "down_proj"),
    )
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.3)
    hf = save_hf_adapter(peft_model, home.parent / "random_hf")
    lora = export_gguf_lora(
        hf, prepare_base(str(tiny.hf_dir), shared_cache), home.parent / "random.gguf"
    )
    merged = merge_lora(tiny.gguf, lora, home.parent / "merged.gguf")
    settings = load_settings(home=home)
    store = adapters.AdapterStore(settings)
    version = store.add(
        {"adapter.gguf": lora, "adapter_hf": hf, "merged.gguf": merged},
        {"base_model": str(tiny.gguf)},
    )
    runtime = Runtime(settings)

    def ask() -> str:
        return runtime.generate("Where do I live?", max_tokens=12)

    try:
        before = ask()
        assert runtime.adapter_path() == ""
        store.activate(version)
        served = adapters.served_model(settings)  # merged: it decodes faster than a runtime LoRA
        assert (
            served.model_path == str(home / "adapters" / version / "merged.gguf")
            and not served.adapter_path
        )
        with_adapter = ask()
        assert with_adapter != before
        monkeypatch.setattr(adapters, "SERVE_MERGED", False)  # the runtime LoRA answers alike
        assert runtime.adapter_path() == str(home / "adapters" / version / "adapter.gguf")
        assert ask() == with_adapter
        monkeypatch.setattr(adapters, "SERVE_MERGED", True)
        store.update_metrics(version, base_model=str(home.parent / "another-base.gguf"))
        assert adapters.served_model(settings).adapter_path.endswith(
            "adapter.gguf"
        )  # stale merge unused
        store.rollback()
        assert ask() == before
    finally:
        runtime.close()
