#!/usr/bin/env bash
# Creates benchmarks/.venv-trl: the TRL peer's own environment (PyTorch CPU + TRL), kept out of
# the project's dependencies. torch==2.13.0 resolves to the CPU wheel here; never install a plain
# `torch` (a multi-GB CUDA build).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-trl"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q -r "$here/requirements-trl.txt"
"$venv/bin/python" -c 'import torch, trl; print("TRL", trl.__version__, "torch", torch.__version__, "in", "'"$venv"'")'
