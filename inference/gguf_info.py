"""What a GGUF file holds, read from its header: architecture, size, quantisation, context,
chat template, and the memory it needs to run. Nothing is loaded into llama.cpp.

A file that is not GGUF, or a model llama.cpp cannot chat with, gets `problem`: one sentence
for the user instead of an exception, so a listing of many files never stops at a bad one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GGUF_MAGIC = b"GGUF"

# Architectures llama.cpp (0.3.x) generates text with. Embedding-only (bert, nomic-bert,
# jina-bert) and vision projectors (clip) load there but cannot answer.
CHAT_ARCHITECTURES = frozenset(
    {
        "llama",
        "llama4",
        "mistral3",
        "qwen",
        "qwen2",
        "qwen2moe",
        "qwen3",
        "qwen3moe",
        "gemma",
        "gemma2",
        "gemma3",
        "gemma3n",
        "phi2",
        "phi3",
        "phimoe",
        "falcon",
        "falcon-h1",
        "gpt2",
        "gptj",
        "gptneox",
        "starcoder",
        "starcoder2",
        "mpt",
        "bloom",
        "stablelm",
        "olmo",
        "olmo2",
        "olmoe",
        "deepseek",
        "deepseek2",
        "command-r",
        "cohere2",
        "granite",
        "granitemoe",
        "granitehybrid",
        "exaone",
        "exaone4",
        "internlm2",
        "minicpm",
        "minicpm3",
        "mamba",
        "mamba2",
        "rwkv6",
        "rwkv7",
        "chatglm",
        "glm4",
        "glm4moe",
        "baichuan",
        "orion",
        "refact",
        "plamo",
        "plamo2",
        "codeshell",
        "xverse",
        "jais",
        "nemotron",
        "arctic",
        "dbrx",
        "grok",
        "bitnet",
        "openelm",
        "chameleon",
        "smollm3",
        "hunyuan-moe",
        "hunyuan-dense",
        "ernie4_5",
        "ernie4_5-moe",
        "gpt-oss",
        "seed_oss",
        "arcee",
        "dots1",
        "bailingmoe",
        "lfm2",
        "smallthinker",
        "apertus",
    }
)

# Scratch buffers llama.cpp allocates beside weights and KV cache (measured on small models;
# a floor so tiny models are not shown as needing a few MB).
COMPUTE_OVERHEAD_BYTES = 96 * 1024 * 1024


@dataclass(frozen=True)
class GGUFInfo:
    path: str
    file_bytes: int
    architecture: str = ""
    name: str = ""
    parameters: int = 0
    quantisation: str = ""
    context_length: int = 0
    has_chat_template: bool = False
    ram_bytes: int = 0  # weights + KV cache at `ram_context` tokens + scratch
    ram_context: int = 0
    problem: str = ""  # one sentence when the file cannot be used for chat

    @property
    def usable(self) -> bool:
        return not self.problem

    def to_json(self) -> dict[str, object]:
        return {
            "architecture": self.architecture,
            "general_name": self.name,
            "parameters": self.parameters,
            "size": human_count(self.parameters) if self.parameters else "",
            "file_bytes": self.file_bytes,
            "quantisation": self.quantisation,
            "context_length": self.context_length,
            "chat_template": self.has_chat_template,
            "ram_bytes": self.ram_bytes,
            "ram": human_bytes(self.ram_bytes) if self.ram_bytes else "",
            "ram_context": self.ram_context,
            "problem": self.problem,
        }


def human_count(n: int) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}".replace(".0", "")
    return str(n)


def human_bytes(n: int) -> str:
    for unit, div in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


def is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == GGUF_MAGIC
    except OSError:
        return False


_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
# ggml type id -> name, for files without general.file_type (from ggml.h; stable ids)
_GGML_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    6: "Q5_0",
    7: "Q5_1",
    8: "Q8_0",
    9: "Q8_1",
    10: "Q2_K",
    11: "Q3_K",
    12: "Q4_K",
    13: "Q5_K",
    14: "Q6_K",
    15: "Q8_K",
    16: "IQ2_XXS",
    17: "IQ2_XS",
    18: "IQ3_XXS",
    19: "IQ1_S",
    20: "IQ4_NL",
    21: "IQ3_S",
    22: "IQ2_S",
    23: "IQ4_XS",
    29: "IQ1_M",
    30: "BF16",
    34: "TQ1_0",
    35: "TQ2_0",
    39: "MXFP4",
}


class _Header:
    """The key/value metadata and tensor shapes of a GGUF file, read straight from its bytes.

    gguf.GGUFReader decodes every vocabulary entry into numpy objects (seconds for a 50k-token
    vocabulary); a listing needs only scalars, so arrays are skipped by their lengths.
    """

    def __init__(self, buf: Any) -> None:
        import struct

        self.buf, self.pos, self.struct = buf, 4, struct
        version = self._u32()
        if version < 2 or version > 3:
            raise ValueError(f"unsupported GGUF version {version}")
        n_tensors, n_kv = self._u64(), self._u64()
        self.values: dict[str, Any] = {}
        for _ in range(n_kv):
            key = self._str()
            self.values[key] = self._value(self._u32())
        self.tensors: list[tuple[int, int]] = []  # (elements, ggml type)
        for _ in range(n_tensors):
            self._skip_str()
            dims = [self._u64() for _ in range(self._u32())]
            ttype = self._u32()
            self._u64()  # data offset
            count = 1
            for d in dims:
                count *= d
            self.tensors.append((count, ttype))

    def _read(self, fmt: str) -> Any:
        size = self.struct.calcsize(fmt)
        (v,) = self.struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return v

    def _u32(self) -> int:
        return int(self._read("<I"))

    def _u64(self) -> int:
        return int(self._read("<Q"))

    def _str(self) -> str:
        n = self._u64()
        raw = bytes(self.buf[self.pos : self.pos + n])
        if len(raw) != n:
            raise ValueError("truncated string")
        self.pos += n
        return raw.decode("utf-8", "replace")

    def _skip_str(self) -> None:
        n = self._u64()
        self.pos += n

    def _value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self._read(_SCALARS[vtype])
        if vtype == _STRING:
            return self._str()
        if vtype == _ARRAY:
            etype, count = self._u32(), self._u64()
            if etype in _SCALARS:
                self.pos += self.struct.calcsize(_SCALARS[etype]) * count
            elif etype == _STRING:
                for _ in range(count):
                    self._skip_str()
            else:
                for _ in range(count):
                    self._value(etype)
            if self.pos > len(self.buf):
                raise ValueError("truncated array")
            return None  # arrays (vocabularies) are not needed for a listing
        raise ValueError(f"unknown GGUF value type {vtype}")


def _quantisation(header: _Header) -> str:
    ftype = header.values.get("general.file_type")
    if isinstance(ftype, int) and not isinstance(ftype, bool):
        try:
            import gguf

            return gguf.LlamaFileType(ftype).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except (ImportError, ValueError):
            pass
    # No file type in the header: the type most weights use.
    kinds = Counter(_GGML_TYPES.get(t, str(t)) for n, t in header.tensors if n > 1)
    return kinds.most_common(1)[0][0] if kinds else ""


def _kv_bytes_per_token(values: dict[str, Any], arch: str) -> int:
    def num(key: str) -> int:
        v = values.get(f"{arch}.{key}")
        return int(v) if isinstance(v, (int, float)) else 0

    layers, heads = num("block_count"), num("attention.head_count")
    kv_heads = num("attention.head_count_kv") or heads
    head_dim = num("attention.key_length") or (num("embedding_length") // heads if heads else 0)
    return 2 * layers * kv_heads * head_dim * 2  # K and V, f16


def read_gguf_info(path: str | Path, n_ctx: int = 4096) -> GGUFInfo:
    """Header facts of one file; never raises for bad files (see `problem`)."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        return GGUFInfo(str(p), 0, problem=f"{p} cannot be read ({exc.strerror}).")
    if not is_gguf(p):
        return GGUFInfo(
            str(p), size, problem=f"{p.name} is not a GGUF file, so llama.cpp cannot load it."
        )
    import mmap
    import struct

    try:
        with p.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            header = _Header(buf)
    except OSError as exc:
        return GGUFInfo(str(p), size, problem=f"{p.name} cannot be read ({exc.strerror or exc}).")
    except struct.error:
        return GGUFInfo(
            str(p), size, problem=f"{p.name} has a damaged GGUF header (the file ends early)."
        )
    except (ValueError, IndexError, OverflowError, MemoryError) as exc:
        return GGUFInfo(str(p), size, problem=f"{p.name} has a damaged GGUF header ({exc}).")
    values = header.values
    arch = str(values.get("general.architecture") or "")
    ctx_value = values.get(f"{arch}.context_length")
    context = int(ctx_value) if isinstance(ctx_value, (int, float)) else 0
    ram_ctx = min(n_ctx, context) if context else n_ctx
    ram = size + _kv_bytes_per_token(values, arch) * ram_ctx + COMPUTE_OVERHEAD_BYTES
    problem = ""
    if arch not in CHAT_ARCHITECTURES:
        problem = (
            f"{p.name} is a {arch or 'unknown'}-architecture model, which memex cannot use "
            "to answer (it needs a llama.cpp chat architecture such as llama, qwen2 or gemma)."
        )
    return GGUFInfo(
        path=str(p),
        file_bytes=size,
        architecture=arch,
        name=str(values.get("general.name") or ""),
        parameters=sum(n for n, _ in header.tensors),
        quantisation=_quantisation(header),
        context_length=context,
        has_chat_template="tokenizer.chat_template" in values,
        ram_bytes=ram,
        ram_context=ram_ctx,
        problem=problem,
    )
