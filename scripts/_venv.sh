# Shared by scripts/run.sh and scripts/test.sh: make .venv in the project root and install memex
# with the given extras. Re-installs only when pyproject.toml or the extras change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="$1"
PY="${PYTHON:-python3}"
cd "$ROOT"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
STAMP=".venv/.memex-installed"
WANT="$(sha256sum pyproject.toml | cut -c1-16)-$EXTRAS"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
  echo "memex: installing into .venv (first time: several minutes, llama.cpp compiles from source)..." >&2
  export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
  .venv/bin/python -m pip install --disable-pip-version-check -q --upgrade pip >&2
  # torch first, pinned: the CPU build; any other spec could pull a multi-GB CUDA build.
  .venv/bin/python -m pip install --disable-pip-version-check -q "torch==2.13.0" >&2
  .venv/bin/python -m pip install --disable-pip-version-check -q -e ".[$EXTRAS]" >&2
  echo "$WANT" > "$STAMP"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
