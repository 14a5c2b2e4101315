"""Small helpers over the `gguf` package: copy metadata, read and write tensors."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SKIP_KEYS = ("GGUF.", "general.architecture")


def field_value(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def copy_metadata(reader: Any, writer: Any, skip: Iterable[str] = ()) -> None:
    """Every key/value of `reader` except the file-level ones and `skip` prefixes."""
    import gguf

    prefixes = tuple(SKIP_KEYS) + tuple(skip)
    for field in reader.fields.values():
        if field.name.startswith(prefixes):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)


def dequantize(tensor: Any) -> Any:
    """A reader tensor as float32 in numpy order (rows = ggml ne[1])."""
    import gguf
    import numpy as np

    return np.asarray(gguf.quants.dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)


def dequantize_array(data: Any, qtype: Any) -> Any:
    """Raw quantized blocks (as `quantize` returns them) back to float32."""
    import gguf
    import numpy as np

    return np.asarray(gguf.quants.dequantize(data, qtype), dtype=np.float32)


def quantize(arr: Any, qtype: Any) -> tuple[Any, Any]:
    """(data, raw_dtype) at `qtype` when the gguf package can write it, else Q8_0/F16."""
    import gguf
    import numpy as np

    T = gguf.GGMLQuantizationType
    if qtype == T.F32:
        return arr.astype(np.float32), None
    if qtype == T.F16:
        return arr.astype(np.float16), None
    for candidate in (qtype, T.Q8_0):
        try:
            return gguf.quants.quantize(arr, candidate), candidate
        except (NotImplementedError, gguf.quants.QuantError, KeyError):
            continue
    return arr.astype(np.float16), None


def write_atomic(writer_factory: Any, out_path: Path) -> None:
    """Run `writer_factory(tmp_path)` (which writes a complete file) then rename into place."""
    tmp = out_path.with_name(out_path.name + ".tmp")
    try:
        writer_factory(tmp)
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def float32_copy(src: str | Path, dst: str | Path) -> Path:
    """`src` with every tensor dequantized to F32, same metadata (file type: all F32).

    The same weights that transformers loads from `src`, without llama.cpp's 8-bit rounding of
    activations that quantized matmuls do: torch and llama.cpp agree on it to float32 precision,
    so a GGUF LoRA checked on this copy checks the export alone (benchmarks/finetune.py)."""
    import gguf

    src, dst = Path(src), Path(dst)
    reader = gguf.GGUFReader(str(src))

    def write(tmp: Path) -> None:
        writer = gguf.GGUFWriter(str(tmp), str(field_value(reader, "general.architecture")))
        copy_metadata(reader, writer, skip=("general.file_type",))
        writer.add_file_type(gguf.LlamaFileType.ALL_F32)
        for t in reader.tensors:
            shape = [int(x) for x in reversed(t.shape)]
            writer.add_tensor(t.name, dequantize(t).reshape(shape))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

    write_atomic(write, dst)
    return dst
