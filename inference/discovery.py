"""Finding GGUF models already on disk: bundled, Ollama, LM Studio, MEMEX_HOME/models, added.

Files are read where they lie (never copied). Each place has its own layout:

- Ollama: `$OLLAMA_MODELS`, else `~/.ollama/models` and `/usr/share/ollama/.ollama/models`.
  `manifests/<registry>/<namespace>/<model>/<tag>` is JSON whose layer of mediaType
  `application/vnd.ollama.image.model` names the weights by digest `sha256:<hex>`, stored as
  `blobs/sha256-<hex>` (a GGUF without a suffix).
- LM Studio: the folder named in `~/.lmstudio-home-pointer` (its `models/` when present),
  else `~/.lmstudio/models`, then `~/.cache/lm-studio/models`; `<publisher>/<model>/*.gguf`.
- memex: `*.gguf` under `MEMEX_HOME/models`, files added by path, and the bundled model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from inference.gguf_info import GGUFInfo, read_gguf_info

OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
ORIGINS = ("bundled", "ollama", "lmstudio", "memex", "added")


@dataclass(frozen=True)
class FoundModel:
    """One model file found on disk; `name` is what `memex models use NAME` takes."""

    name: str
    path: str
    origin: str  # one of ORIGINS
    info: GGUFInfo | None = None
    problems: tuple[str, ...] = ()  # layout problems (bad manifest, missing blob)

    @property
    def usable(self) -> bool:
        return not self.problems and (self.info is None or self.info.usable)

    @property
    def problem(self) -> str:
        if self.problems:
            return self.problems[0]
        return self.info.problem if self.info is not None else ""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "path": self.path,
            "origin": self.origin,
            "usable": self.usable,
            "problem": self.problem,
        }
        if self.info is not None:
            out.update({k: v for k, v in self.info.to_json().items() if k != "problem"})
        return out


@dataclass(frozen=True)
class SearchRoots:
    """Where to look; `from_env` gives the real places, tests build their own trees."""

    ollama: tuple[Path, ...] = ()
    lmstudio: tuple[Path, ...] = ()
    memex_models: Path | None = None
    added: tuple[Path, ...] = ()
    include_bundled: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(
        cls,
        models_dir: Path,
        added: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        home: Path | None = None,
        include_bundled: bool = True,
    ) -> SearchRoots:
        env = os.environ if env is None else env
        home = Path.home() if home is None else home
        return cls(
            ollama=ollama_roots(env, home),
            lmstudio=lmstudio_roots(home),
            memex_models=models_dir,
            added=tuple(Path(a).expanduser() for a in added),
            include_bundled=include_bundled,
        )


def ollama_roots(env: Mapping[str, str], home: Path) -> tuple[Path, ...]:
    if env.get("OLLAMA_MODELS"):
        return (Path(env["OLLAMA_MODELS"]).expanduser(),)
    return (home / ".ollama" / "models", Path("/usr/share/ollama/.ollama/models"))


def lmstudio_roots(home: Path) -> tuple[Path, ...]:
    roots: list[Path] = []
    pointer = home / ".lmstudio-home-pointer"
    try:
        named = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        named = ""
    if named:
        folder = Path(named).expanduser()
        roots.append(folder / "models" if (folder / "models").is_dir() else folder)
    roots += [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]
    return tuple(dict.fromkeys(roots))


def _ollama(root: Path) -> Iterator[FoundModel]:
    manifests = root / "manifests"
    if not manifests.is_dir():
        return
    for tag_file in sorted(p for p in manifests.rglob("*") if p.is_file()):
        parts = tag_file.relative_to(manifests).parts
        if len(parts) != 4:
            continue
        _registry, namespace, model, tag = parts
        name = (
            f"ollama/{model}:{tag}"
            if namespace == "library"
            else f"ollama/{namespace}/{model}:{tag}"
        )
        try:
            manifest = json.loads(tag_file.read_text(encoding="utf-8"))
            layers = manifest["layers"]
            digest = next(
                str(layer["digest"])
                for layer in layers
                if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL_LAYER
            )
        except (
            OSError,
            UnicodeDecodeError,
            json.JSONDecodeError,
            KeyError,
            TypeError,
            StopIteration,
        ):
            yield FoundModel(
                name,
                str(tag_file),
                "ollama",
                problems=(
                    f"The Ollama manifest {tag_file} names no model layer; run `ollama pull "
                    f"{model}:{tag}` again.",
                ),
            )
            continue
        blob = root / "blobs" / digest.replace(":", "-", 1)
        if not blob.is_file():
            yield FoundModel(
                name,
                str(blob),
                "ollama",
                problems=(
                    f"The weights of {name} ({blob.name}) are missing from {root / 'blobs'}.",
                ),
            )
            continue
        yield FoundModel(name, str(blob), "ollama")


def _lmstudio(root: Path) -> Iterator[FoundModel]:
    if not root.is_dir():
        return
    for f in sorted(root.glob("*/*/*.gguf")):
        publisher, model = f.parent.parent.name, f.parent.name
        yield FoundModel(f"lmstudio/{publisher}/{model}/{f.stem}", str(f), "lmstudio")


def _folder(root: Path | None) -> Iterator[FoundModel]:
    if root is None or not root.is_dir():
        return
    for f in sorted(root.rglob("*.gguf")):
        yield FoundModel(f"memex/{f.relative_to(root).with_suffix('').as_posix()}", str(f), "memex")


def _bundled() -> Iterator[FoundModel]:
    from inference.base import BackendError
    from inference.models import BUNDLED, bundled_path

    for name in BUNDLED:
        try:
            yield FoundModel(name, str(bundled_path(name)), "bundled")
        except BackendError as exc:
            yield FoundModel(name, "", "bundled", problems=(str(exc),))


def discover(
    roots: SearchRoots, *, n_ctx: int = 4096, read_headers: bool = True
) -> list[FoundModel]:
    """Every model in `roots`, in ORIGINS order; the same file found twice is listed once."""
    found: list[FoundModel] = []
    if roots.include_bundled:
        found += _bundled()
    for r in roots.ollama:
        found += _ollama(r)
    for r in roots.lmstudio:
        found += _lmstudio(r)
    found += _folder(roots.memex_models)
    for p in roots.added:
        found.append(
            FoundModel(
                f"added/{p.stem}",
                str(p),
                "added",
                problems=() if p.is_file() else (f"The added model file {p} no longer exists.",),
            )
        )
    seen: set[str] = set()
    out: list[FoundModel] = []
    for m in found:
        key = _real(m.path) if m.path else m.name
        if key in seen:
            continue
        seen.add(key)
        if read_headers and m.path and not m.problems:
            m = FoundModel(m.name, m.path, m.origin, read_gguf_info(m.path, n_ctx), m.problems)
        out.append(m)
    return out


def _real(path: str) -> str:
    # Not resolve(): a symlinked blob is its own entry (Ollama may link to a file listed elsewhere).
    return os.path.normpath(os.path.abspath(path))


def find(models: Sequence[FoundModel], name: str) -> FoundModel | None:
    """By exact name, else by a unique name ending (`llama3.2:latest`, `qwen2.5-1.5b`)."""
    for m in models:
        if m.name == name:
            return m
    tail = [
        m
        for m in models
        if m.name.endswith("/" + name) or m.name.split("/")[-1].lower() == name.lower()
    ]
    return tail[0] if len(tail) == 1 else None
