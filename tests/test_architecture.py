"""Package boundaries (import-linter) and a light `memex --help`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = [
    "torch",
    "transformers",
    "chromadb",
    "sentence_transformers",
    "llama_cpp",
    "PySide6",
    "peft",
]


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    res = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_layers_and_qt_contracts_are_configured():
    """The contracts the suite relies on stay in pyproject (deleting one would pass silently)."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "importlinter"
    ]["contracts"]
    by_type: dict[str, list[dict]] = {}
    for c in contracts:
        by_type.setdefault(c["type"], []).append(c)
    qt = [c for c in by_type.get("protected", []) if c["protected_modules"] == ["PySide6"]]
    assert qt and qt[0]["allowed_importers"] == ["app.gui"]
    layers = [c for c in by_type.get("layers", []) if c["layers"][0].startswith("app.cli")]
    assert layers, "the app layers contract is missing"
    named = {
        m.strip("() ") for layer in layers[0]["layers"] for m in layer.replace("|", ":").split(":")
    }
    # every module of app/ has a layer, so a new one cannot slip past the contract; a package
    # split across layers (app.service: its process above the front-ends, its client below)
    # names each of its modules instead
    unnamed = []
    for module in _modules(ROOT / "app", "app"):
        if module in named:
            continue
        package = ROOT.joinpath(*module.split("."))
        if not package.is_dir() or not any(m.startswith(module + ".") for m in named):
            unnamed.append(module)
            continue
        unnamed += [m for m in _modules(package, module) if m not in named]
    assert not unnamed, sorted(unnamed)


def _modules(folder: Path, prefix: str) -> list[str]:
    """The modules and packages directly inside `folder` (a package), as dotted names."""
    return sorted(
        f"{prefix}.{p.stem if p.suffix else p.name}"
        for p in folder.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    )


def test_help_and_cli_import_load_no_heavy_library():
    code = (
        "import sys, app.cli\n"
        "from app.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"


def test_every_subcommand_help_is_light():
    from app.cli import COMMANDS

    code = (
        "import sys\nfrom app.cli import main\n"
        f"for name in {list(COMMANDS)!r}:\n"
        "    try:\n        main([name, '--help'])\n    except SystemExit:\n        pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"
