#!/usr/bin/env bash
# Sets up what the benchmarks need: hone built, ONNX Runtime (npm, CPU), Debian's
# torch/torchvision/numpy, and the torchvision reference models (random weights).
set -euo pipefail
cd "$(dirname "$0")/.."
HONE_WITH_PYTHON=1 scripts/install-deps.sh
command -v npm >/dev/null || { echo "bench/setup.sh: npm is required (apt-get install npm)"; exit 1; }
[ -d bench/node_modules/onnxruntime-node ] || (cd bench && npm install --ignore-scripts --no-audit --no-fund >/dev/null)
/usr/bin/python3 bench/export_torchvision.py bench/models >/dev/null
make build >/dev/null
