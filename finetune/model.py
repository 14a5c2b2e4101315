"""The base model in PyTorch: converted once from the chat GGUF (or an HF folder), then LoRA.

transformers dequantizes the GGUF (`gguf_file=`), so the adapter learns against the weights
llama.cpp runs. The dequantized weights are cached as one torch file so later runs skip the
~20 s conversion and can memory-map the frozen base instead of copying it into RAM.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.errors import ModelLoadError

WEIGHTS_FILE = "weights.pt"
META_FILE = "memex_base.json"

# transformers model_type -> (GGUF architecture, q/k rows permuted by llama.cpp's converter)
ARCHITECTURES: dict[str, tuple[str, bool]] = {
    "llama": ("llama", True),
    "mistral": ("llama", True),
    "qwen2": ("qwen2", False),
    "qwen3": ("qwen3", False),
    "gemma3_text": ("gemma3", False),
    "gemma3": ("gemma3", False),
    "gemma2": ("gemma2", False),
    "phi3": ("phi3", False),
}


@dataclass(frozen=True)
class BaseInfo:
    """What export needs to know about the base: GGUF arch name and head counts."""

    cache_dir: Path
    gguf_arch: str
    permute_qk: bool
    n_head: int
    n_head_kv: int
    num_layers: int
    source: str


def _source_key(path: Path) -> str:
    st = path.stat()
    raw = f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _split_source(base_model: str) -> tuple[Path, str | None]:
    path = Path(base_model).expanduser()
    if not path.exists():
        raise ModelLoadError(
            f"The base model {path} does not exist; point it at a GGUF file or a model folder."
        )
    if path.is_file():
        return path.parent, path.name
    if not (path / "config.json").exists():
        raise ModelLoadError(
            f"The folder {path} is not a transformers model (it has no config.json)."
        )
    return path, None


def prepare_base(base_model: str, cache_root: str | Path) -> BaseInfo:
    """Convert the base to the cache once (atomic) and describe it."""
    folder, gguf_file = _split_source(base_model)
    source = folder / gguf_file if gguf_file else folder
    cache = Path(cache_root) / _source_key(source)
    if not (cache / META_FILE).exists():
        _convert(folder, gguf_file, cache)
    return _read_info(cache)


def _convert(folder: Path, gguf_file: str | None, cache: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    what = folder / gguf_file if gguf_file else folder
    try:
        tok = AutoTokenizer.from_pretrained(str(folder), **kwargs)
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, **kwargs)
    except Exception as exc:  # transformers raises many types for unreadable models
        raise ModelLoadError(
            f"transformers cannot load the base model {what} ({type(exc).__name__}: "
            f"{str(exc)[:200]}); "
            "use a GGUF or model folder of a supported architecture."
        ) from exc
    model_type = model.config.model_type
    arch, permute = ARCHITECTURES.get(model_type, (model_type, False))
    if gguf_file:
        arch = _gguf_arch(folder / gguf_file) or arch
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cfg = model.config
    if hasattr(cfg, "quantization_config"):
        delattr(cfg, "quantization_config")  # the cached weights are plain float32
    cfg.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    torch.save(model.state_dict(), tmp / WEIGHTS_FILE)
    meta = {
        "gguf_arch": arch,
        "permute_qk": permute,
        "source": str(what),
        "n_head": int(cfg.num_attention_heads),
        "n_head_kv": int(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads),
        "num_layers": int(cfg.num_hidden_layers),
    }
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    del model
    shutil.rmtree(cache, ignore_errors=True)
    os.replace(tmp, cache)


def _gguf_arch(path: Path) -> str | None:
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields.get("general.architecture")
    if field is None:
        return None
    return bytes(field.parts[field.data[0]]).decode()


def _read_info(cache: Path) -> BaseInfo:
    meta = json.loads((cache / META_FILE).read_text())
    return BaseInfo(
        cache_dir=cache,
        gguf_arch=meta["gguf_arch"],
        permute_qk=bool(meta["permute_qk"]),
        n_head=meta["n_head"],
        n_head_kv=meta["n_head_kv"],
        num_layers=meta["num_layers"],
        source=meta["source"],
    )


def load_base(info: BaseInfo, *, mmap: bool, device: str = "cpu") -> tuple[Any, Any]:
    """Build the model without initialising weights, then attach the cached ones.

    With `mmap=True` the frozen weights stay file-backed pages the kernel may drop and
    re-read, instead of anonymous memory that only swap could reclaim.
    """
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(str(info.cache_dir))
    with init_empty_weights(include_buffers=False):
        # sdpa takes the block-diagonal boolean masks of packed rows as they are
        model = AutoModelForCausalLM.from_config(
            config, dtype=torch.float32, attn_implementation="sdpa"
        )
    state = torch.load(
        info.cache_dir / WEIGHTS_FILE, mmap=mmap, weights_only=True, map_location="cpu"
    )
    model.load_state_dict(state, assign=True, strict=False)
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    left = [n for n, p in model.named_parameters() if p.device.type == "meta"]
    if left:
        raise ModelLoadError(
            f"The cached base model misses weights ({', '.join(left[:3])}); delete "
            f"{info.cache_dir}."
        )
    model.to(device)
    model.requires_grad_(False)
    tok = AutoTokenizer.from_pretrained(str(info.cache_dir))
    return model, tok


def add_lora(model: Any, rank: int, alpha: float, target_modules: tuple[str, ...]) -> Any:
    """Wrap with a plain LoRA (no rsLoRA/DoRA: llama.cpp applies only B @ A * alpha / r)."""
    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in target_modules if t not in names]
    if missing:
        raise ModelLoadError(f"The base model has no modules named {', '.join(missing)} to adapt.")
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,  # type: ignore[arg-type]  # peft accepts floats
        target_modules=list(target_modules),
        lora_dropout=0.0,
        bias="none",
        use_rslora=False,
        use_dora=False,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)
