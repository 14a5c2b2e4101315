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


# A function-level import that closes an import cycle hides a layering problem: move the
# shared piece to the module that owns it instead. Lazy imports for speed (a light --help,
# the GUI's first paint) are fine; they close no cycle.
def test_no_function_level_import_dodges_a_cycle():
    imports = _import_graph(["app", "memory", "inference", "finetune"])
    graph: dict[str, set[str]] = {}
    for (importer, imported), _ in imports.items():
        graph.setdefault(importer, set()).add(imported)
    dodges = set()
    for (importer, imported), lazy in imports.items():
        if not lazy:
            continue
        # importing `imported` runs its packages first; the importer's own are already running
        parents = {importer.rsplit(".", i)[0] for i in range(1, importer.count(".") + 1)}
        seen, stack = set(parents), [imported]
        while stack:
            module = stack.pop()
            if module in seen:
                continue
            seen.add(module)
            stack += graph.get(module, ())
            stack += [module.rsplit(".", i)[0] for i in range(1, module.count(".") + 1)]
        if importer in seen:
            dodges.add((importer, imported))
    assert not dodges, sorted(dodges)


def _import_graph(packages: list[str]) -> dict[tuple[str, str], bool]:
    """(importer, imported) -> whether every such import is inside a function; imports under
    `if TYPE_CHECKING:` are left out (they never run)."""
    import ast

    modules: dict[str, Path] = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    edges: dict[tuple[str, str], bool] = {}

    def named(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        base = node.module or ""
        if node.level:
            package = module.split(".")
            if modules[module].name != "__init__.py":
                package = package[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join(package + ([base] if base else []))
        return [base] + [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]

    def walk(module: str, body: list[ast.stmt], lazy: bool) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                for name in named(module, node):
                    if name in modules:
                        key = (module, name)
                        edges[key] = edges.get(key, True) and lazy
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                walk(module, node.orelse, lazy)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                walk(module, node.body, True)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    sub = getattr(node, field, None)
                    if isinstance(sub, list):
                        walk(module, sub, lazy)

    for module, path in modules.items():
        walk(module, ast.parse(path.read_text(encoding="utf-8")).body, False)
    return edges
