"""Which checkpoint folder a model name means: tiny[-family], moefied, or a folder.

Used by serving (backend.py) and the tools alike, so serving never imports the benchmark.
"""

from __future__ import annotations

from pathlib import Path

from inference.moe.errors import ModelNotBuilt, MoEError


def resolve_model(spec: str, models_dir: Path, *, build: bool = True) -> Path:
    """tiny[-family] | moefied | a checkpoint folder. `build=False`: never start a MoEfication."""
    if spec == "tiny" or spec.startswith("tiny-"):
        from inference.moe.tools.tiny import FAMILY_NAMES, ensure_tiny

        family = spec.split("-", 1)[1] if "-" in spec else "mixtral"
        if family not in FAMILY_NAMES:
            raise MoEError(
                f"Unknown tiny model {spec!r}; use tiny, "
                f"{', '.join('tiny-' + f for f in FAMILY_NAMES)}."
            )
        return ensure_tiny(models_dir, family)
    if spec == "moefied" and not build:
        folder = Path(models_dir) / "moefied"
        if not (folder / "config.json").is_file():
            raise ModelNotBuilt(
                f"The MoEfied model is not built yet ({folder} is missing); "
                "run `memex moe moefy` first."
            )
        return folder
    if spec == "moefied":
        # Built on first use (a few minutes on 2 cores), cached under models_dir afterwards.
        import sys

        from inference.moe.tools.moefy import ensure_moefied

        return ensure_moefied(
            Path(models_dir), progress=lambda msg: print(f"moefy: {msg}", file=sys.stderr)
        )
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise MoEError(
            f"Model {spec!r} is neither tiny, moefied nor an existing checkpoint folder."
        )
    return folder
