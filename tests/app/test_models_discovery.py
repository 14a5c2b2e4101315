"""`memex models`: GGUF models found where Ollama, LM Studio and memex keep them (fixture trees
of tiny GGUF files written with the gguf package), chosen by name, added by path."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.cli_support import run


def write_gguf(path: Path, arch: str = "llama", *, ctx: int = 2048, template: bool = True) -> Path:
    import gguf
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"tiny-{arch}")
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_context_length(ctx)
    w.add_block_count(2)
    w.add_embedding_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    if template:
        w.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    w.add_tensor("token_embd.weight", np.zeros((32, 64), dtype=np.float32))
    w.add_tensor("blk.0.attn_q.weight", np.zeros((64, 64), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def ollama_model(root: Path, namespace: str, model: str, tag: str, gguf_file: Path | None) -> Path:
    """A pulled model as Ollama stores it: manifest JSON + content-addressed blob."""
    layers = [
        {
            "mediaType": "application/vnd.ollama.image.template",
            "digest": "sha256:" + "0" * 64,
            "size": 1,
        }
    ]
    blob = None
    if gguf_file is not None:
        data = gguf_file.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        blob = root / "blobs" / f"sha256-{digest}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        os.replace(gguf_file, blob)
        layers.insert(
            0,
            {
                "mediaType": "application/vnd.ollama.image.model",
                "digest": f"sha256:{digest}",
                "size": len(data),
            },
        )
    manifest = root / "manifests" / "registry.example" / namespace / model / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"schemaVersion": 2, "config": {}, "layers": layers}))
    return blob or manifest


@pytest.fixture
def disks(tmp_path: Path, memex_home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A user's home with Ollama, LM Studio (via its home pointer and the cache folder) and memex
    models."""
    home = tmp_path / "user"
    monkeypatch.setenv("HOME", str(home))
    ollama = tmp_path / "ollama-models"
    monkeypatch.setenv("OLLAMA_MODELS", str(ollama))
    out: dict[str, Path] = {}
    out["ollama"] = ollama_model(
        ollama, "library", "tinyllama", "latest", write_gguf(tmp_path / "a.gguf")
    )
    out["ollama_ns"] = ollama_model(
        ollama, "someone", "qwen-tiny", "q8", write_gguf(tmp_path / "b.gguf", "qwen2")
    )
    out["ollama_broken"] = ollama_model(ollama, "library", "gone", "latest", None)
    lms = tmp_path / "lmstudio-home"
    (home).mkdir(parents=True, exist_ok=True)
    (home / ".lmstudio-home-pointer").write_text(str(lms) + "\n")
    out["lmstudio"] = write_gguf(
        lms / "models" / "bartowski" / "Tiny-GGUF" / "Tiny-Q4_K_M.gguf", ctx=8192
    )
    out["lmstudio_cache"] = write_gguf(
        home / ".cache" / "lm-studio" / "models" / "pub" / "m" / "m-f16.gguf",
        "gemma2",
        template=False,
    )
    out["memex"] = write_gguf(memex_home / "models" / "mine.gguf", "phi3")
    out["embedder"] = write_gguf(memex_home / "models" / "embed.gguf", "bert")
    (memex_home / "models" / "fake.gguf").write_text("not a model at all")
    out["fake"] = memex_home / "models" / "fake.gguf"
    return out


def by_name(payload: dict) -> dict[str, dict]:
    return {m["name"]: m for m in payload["models"]}


def test_all_three_layouts_are_found_with_their_metadata(capsys, disks):
    code, out = run(capsys, "--json", "models", "list")
    assert code == 0, out
    models = by_name(out)
    bundled = models["smollm2-135m-instruct-q4_1"]
    assert bundled["origin"] == "bundled" and bundled["usable"] and bundled["active"]
    assert (
        bundled["architecture"] == "llama"
        and bundled["quantisation"] == "Q4_1"
        and bundled["chat_template"]
    )

    ol = models["ollama/tinyllama:latest"]
    assert ol["origin"] == "ollama" and ol["path"] == str(disks["ollama"]) and ol["usable"]
    assert (
        ol["architecture"] == "llama"
        and ol["context_length"] == 2048
        and ol["chat_template"] is True
    )
    assert ol["quantisation"] == "F32" and ol["parameters"] == 32 * 64 + 64 * 64
    # weights + f16 KV cache for the 2048-token context (2 layers x 2 kv heads x 16 dims) + scratch
    assert ol["ram_bytes"] > ol["file_bytes"] + 2 * 2 * 2 * 16 * 2 * 2048 - 1
    assert models["ollama/someone/qwen-tiny:q8"]["architecture"] == "qwen2"
    broken = models["ollama/gone:latest"]
    assert not broken["usable"] and "names no model layer" in broken["problem"]

    lm = models["lmstudio/bartowski/Tiny-GGUF/Tiny-Q4_K_M"]
    assert lm["origin"] == "lmstudio" and lm["context_length"] == 8192
    cached = models["lmstudio/pub/m/m-f16"]
    assert cached["architecture"] == "gemma2" and cached["chat_template"] is False

    assert models["memex/mine"]["architecture"] == "phi3" and models["memex/mine"]["usable"]
    bert = models["memex/embed"]
    assert (
        not bert["usable"]
        and "bert-architecture" in bert["problem"]
        and "\n" not in bert["problem"]
    )
    fake = models["memex/fake"]
    assert (
        not fake["usable"]
        and fake["problem"] == "fake.gguf is not a GGUF file, so llama.cpp cannot load it."
    )
    assert sum(m["active"] for m in out["models"]) == 1


def test_use_stores_the_choice_without_copying(capsys, disks, memex_home):
    before = sorted(p.name for p in (memex_home / "models").iterdir())
    code, out = run(capsys, "--json", "models", "use", "tinyllama:latest")
    assert code == 0, out
    assert out["name"] == "ollama/tinyllama:latest" and out["path"] == str(disks["ollama"])
    settings = json.loads((memex_home / "settings.json").read_text())
    assert settings["model_path"] == str(disks["ollama"]) and settings["backend"] == "llamacpp"
    assert sorted(p.name for p in (memex_home / "models").iterdir()) == before
    code, out = run(capsys, "--json", "models", "list")
    assert [m["name"] for m in out["models"] if m["active"]] == ["ollama/tinyllama:latest"]
    # and back to the bundled model
    code, out = run(capsys, "--json", "models", "use", "smollm2-135m-instruct-q4_1")
    assert code == 0 and json.loads((memex_home / "settings.json").read_text())["model_path"] == ""


def test_bad_choices_are_one_sentence_errors(capsys, disks, tmp_path):
    code, out = run(capsys, "--json", "models", "use", "memex/embed")
    assert code == 1 and out["kind"] == "bad_model" and "bert" in out["error"]
    code, out = run(capsys, "--json", "models", "use", "no-such-model")
    assert code == 1 and out["kind"] == "not_found" and "memex models list" in out["error"]
    code, out = run(capsys, "--json", "models", "add", str(tmp_path / "missing.gguf"))
    assert code == 1 and out["kind"] == "bad_input"
    code, out = run(capsys, "--json", "models", "add", str(disks["fake"]))
    assert code == 1 and out["kind"] == "bad_model" and "not a GGUF file" in out["error"]


def test_add_by_path_lists_it_in_place(capsys, disks, tmp_path):
    own = write_gguf(tmp_path / "elsewhere" / "my-model.gguf", "qwen3")
    code, out = run(capsys, "--json", "models", "add", str(own))
    assert code == 0 and out["name"] == "added/my-model" and out["active"] is False
    code, out = run(capsys, "--json", "models", "list")
    added = by_name(out)["added/my-model"]
    assert added["path"] == str(own) and added["architecture"] == "qwen3"
    code, out = run(capsys, "--json", "models", "use", "added/my-model")
    assert code == 0 and out["path"] == str(own)


@pytest.mark.slow
def test_answers_use_the_chosen_model(capsys, disks, tmp_path, monkeypatch):
    """The bundled GGUF stored the way Ollama stores a pull: Runtime loads that blob."""
    from app.runtime import Runtime
    from app.settings import load_settings
    from inference.models import bundled_path

    ollama = Path(os.environ["OLLAMA_MODELS"])
    digest = "5e" * 32  # Ollama names blobs by their digest; memex does not re-hash gigabytes
    blob = ollama / "blobs" / f"sha256-{digest}"
    blob.symlink_to(bundled_path())
    manifest = ollama / "manifests" / "registry.example" / "library" / "smollm2" / "135m"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(
        json.dumps(
            {
                "layers": [
                    {
                        "mediaType": "application/vnd.ollama.image.model",
                        "digest": f"sha256:{digest}",
                    }
                ]
            }
        )
    )
    code, out = run(capsys, "--json", "models", "use", "ollama/smollm2:135m")
    assert code == 0, out
    rt = Runtime(load_settings())
    try:
        assert rt.backend.describe()["model"] == blob.name
        assert rt.generate("Say hi.", max_tokens=4)
    finally:
        rt.close()
