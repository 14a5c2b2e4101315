"""The bundled sentence encoder (a 6-layer BERT, mean pooled) in numpy, without transformers.

Importing sentence-transformers costs ~4 s of CPU on a small machine (it pulls transformers,
scikit-learn, scipy, torch.distributed and the torch compiler) before a single sentence is
embedded, and the first `memex ask` waits for all of it. The model itself is small: this
module runs the same arithmetic (BERT embeddings, 6 encoder layers, mean pooling over the
attention mask, L2 normalization) on the same safetensors weights with the same tokenizer
(the `tokenizers` library reading tokenizer.json), so its vectors match sentence-transformers'
to float32 rounding and stores built with either stay compatible.

`load(folder)` returns None for a folder of another shape (not BERT, not mean pooling);
the caller then uses sentence-transformers as before.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

_ST_TYPES = (
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
)


# A query or one note is too little work to split: BLAS threads then spin on each other
# (2 cores under load: ~120 ms a sentence with 2 threads, ~37 ms with 1). Batches keep all.
SMALL_BATCH = 8
TOKENS_PER_PASS = 2048
_CONTROLLER: Any = None


@contextmanager
def blas_threads(limit: int | None) -> Iterator[None]:
    """At most `limit` BLAS threads inside the block (no limit: None, or no threadpoolctl)."""
    global _CONTROLLER
    if limit is None:
        yield
        return
    try:
        if _CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        limiter = _CONTROLLER.limit(limits=limit, user_api="blas")
    except Exception:  # noqa: BLE001 - without threadpoolctl it runs as numpy was set up
        yield
        return
    with limiter:
        yield


def _json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def load(folder: Path) -> MiniLM | None:
    """The encoder for a sentence-transformers folder of the bundled model's shape, else None."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        types = tuple(m["type"] for m in modules)
        config = _json(folder / "config.json")
        pooling_dir = next(m["path"] for m in modules if m["type"].endswith(".Pooling"))
        pooling = _json(folder / pooling_dir / "config.json")
        st_config = _json(folder / "sentence_bert_config.json")
    except (OSError, ValueError, KeyError, StopIteration, TypeError):
        return None
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    if (
        types != _ST_TYPES
        or config.get("model_type") != "bert"
        or config.get("hidden_act") != "gelu"
        or config.get("position_embedding_type", "absolute") != "absolute"
        or modes != {"pooling_mode_mean_tokens"}
        or st_config.get("do_lower_case")
        or not (folder / "model.safetensors").is_file()
        or not (folder / "tokenizer.json").is_file()
    ):
        return None
    return MiniLM(folder, config, int(st_config.get("max_seq_length") or 256))


class MiniLM:
    """encode() and get_sentence_embedding_dimension() as the Embedder calls them."""

    blas_threads = True  # it limits its own threads for small batches (see Embedder.embed)

    def __init__(self, folder: Path, config: dict[str, Any], max_seq_length: int) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        max_len = min(max_seq_length, int(config.get("max_position_embeddings", 512)))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_len)
        self.tokenizer.no_padding()
        weights = load_file(str(folder / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
        self.w = {k[len(prefix) :]: v.astype(np.float32) for k, v in weights.items()}
        for name in [k for k in self.w if k.startswith("encoder.") and k.endswith(".weight")]:
            if self.w[name].ndim == 2:  # stored (out, in): kept (in, out) and contiguous for BLAS
                self.w[name] = np.ascontiguousarray(self.w[name].T)
        self.dim = int(self.w["embeddings.word_embeddings.weight"].shape[1])
        for layer in range(self.layers):  # query, key and value as one product (fewer passes)
            p = f"encoder.layer.{layer}.attention.self."
            for part in ("weight", "bias"):
                parts = [self.w.pop(f"{p}{name}.{part}") for name in ("query", "key", "value")]
                self.w[f"{p}qkv.{part}"] = np.ascontiguousarray(np.concatenate(parts, axis=-1))

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def encode(
        self,
        sentences: Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = True,
        **_: Any,
    ) -> np.ndarray:
        with blas_threads(1 if len(sentences) <= SMALL_BATCH else None):
            return self._encode(sentences, batch_size, normalize_embeddings)

    def _encode(
        self, sentences: Sequence[str], batch_size: int, normalize_embeddings: bool
    ) -> np.ndarray:
        # sentence-transformers strips each text and sorts by length to pad less; so does this
        texts = [str(s).strip() for s in sentences]
        every = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(every[i].ids))
        encs = [every[i] for i in order]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        start = 0
        while start < len(order):
            # rows padded to the longest: at most TOKENS_PER_PASS tokens a pass keeps numpy's
            # temporaries in cache (a whole batch of long texts was 5x slower than torch)
            longest = len(encs[start].ids)
            rows = max(1, min(batch_size, TOKENS_PER_PASS // max(longest, 1)))
            out[order[start : start + rows]] = self._batch(encs[start : start + rows])
            start += rows
        if normalize_embeddings:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.maximum(norms, 1e-12)
        return out

    def _batch(self, encs: list[Any]) -> np.ndarray:
        n, length = len(encs), max(len(e.ids) for e in encs)
        ids = np.zeros((n, length), dtype=np.int64)
        types = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            types[i, : len(e.ids)] = e.type_ids
            mask[i, : len(e.ids)] = 1.0
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(length)][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for layer in range(self.layers):
            x = self._layer(x, bias, f"encoder.layer.{layer}.")
        summed = (x * mask[:, :, None]).sum(axis=1)
        return summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)  # type: ignore[no-any-return]

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        flat = x.reshape(-1, x.shape[-1]) @ self.w[name + ".weight"] + self.w[name + ".bias"]
        return flat.reshape(*x.shape[:-1], flat.shape[-1])  # type: ignore[no-any-return]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        y = (x - mean) / np.sqrt(var + self.eps)
        return y * self.w[name + ".weight"] + self.w[name + ".bias"]  # type: ignore[no-any-return]

    def _layer(self, x: np.ndarray, bias: np.ndarray, p: str) -> np.ndarray:
        n, length, dim = x.shape
        hd = dim // self.heads

        def heads(t: np.ndarray) -> np.ndarray:
            # contiguous: numpy's stacked matmul falls back to a slow loop on strided slices
            # (40x slower for 256-token texts)
            return np.ascontiguousarray(t.reshape(n, length, self.heads, hd).transpose(0, 2, 1, 3))

        qkv = self._linear(x, p + "attention.self.qkv")
        q, k, v = (heads(qkv[..., i * dim : (i + 1) * dim]) for i in range(3))
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(hd)) + bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, dim)
        x = self._norm(
            self._linear(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm"
        )
        hidden = _gelu(self._linear(x, p + "intermediate.dense"))
        return self._norm(self._linear(hidden, p + "output.dense") + x, p + "output.LayerNorm")


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact gelu, x * Phi(x), with erf to float32 precision (numpy has no erf);
    in place, since it runs over the widest activations."""
    y = _erf(x * np.float32(1.0 / math.sqrt(2.0)))
    y += 1.0
    y *= x
    y *= np.float32(0.5)
    return y


# Abramowitz & Stegun 7.1.26: erf(z) = 1 - t*poly(t)*exp(-z*z), t = 1/(1+P*z), z >= 0;
# absolute error <= 1.5e-7, float32's own rounding (the gelu runs over every hidden unit of
# every token: a cheap erf is a third of a large import's embedding time)
_P = np.float32(0.3275911)
_ERF = tuple(np.float32(c) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736))
_A1 = np.float32(0.254829592)


def _erf(x: np.ndarray) -> np.ndarray:
    z = np.abs(x)
    t = z * _P
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * _ERF[0]
    for c in _ERF[1:]:
        poly += c
        poly *= t
    poly += _A1
    poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # erfc(|x|)
    np.subtract(1.0, poly, out=poly)
    return np.copysign(poly, x, out=poly)  # type: ignore[no-any-return]
