#!/usr/bin/env bash
# Installs the Debian packages hone needs, only those missing. Idempotent and
# non-interactive; uses sudo when not root.
set -euo pipefail
PKGS=(build-essential cmake pkg-config libprotobuf-c-dev protobuf-c-compiler libonnx-dev
      llvm-19-dev libopenblas-dev libcmocka-dev libonnx-testdata dataset-fashion-mnist
      zlib1g-dev)
if [ "${HONE_WITH_PYTHON:-0}" = 1 ]; then
  PKGS+=(python3-numpy python3-torch python3-torchvision)
fi
# Open MPI: the data-parallel build (-DHONE_MPI=ON, docs/SCALING.md) and the
# tests/mpi tests, which build hone_mpi when it is present (HONE_WITH_MPI=0 skips).
if [ "${HONE_WITH_MPI:-1}" = 1 ]; then
  PKGS+=(libopenmpi-dev openmpi-bin)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
