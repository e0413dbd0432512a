#!/usr/bin/env bash
# GPU machine: builds the Python extension against the nvcc-built library and runs the Python
# suite, where the torch CUDA tests (test_torch.py::test_cuda_*) run instead of skipping.
# Needs python3 with numpy, pytest and nanobind importable (the machine has no network: point
# FLASHNCE_NANOBIND_PATH at a folder holding the nanobind package if it is not installed), torch
# for the CUDA tests.  Meant to be called from scripts/device-check.sh; exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
if [ -n "${FLASHNCE_NANOBIND_PATH:-}" ]; then
  export PYTHONPATH="${FLASHNCE_NANOBIND_PATH}${PYTHONPATH:+:$PYTHONPATH}"
fi
arch="${FLASHNCE_CUDA_ARCHITECTURES:-90}"
build=build/py-device
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFLASHNCE_CUDA_ARCHITECTURES="$arch" \
  -DFLASHNCE_BUILD_EMU=OFF -DFLASHNCE_BUILD_BENCH=OFF -DFLASHNCE_BUILD_TESTS=OFF \
  -DPython_EXECUTABLE="$(command -v python3)" >/dev/null
cmake --build "$build" --target flashnce_python -j "$(nproc)"
test -n "$(ls "$build"/python/pkg/flashnce/_C*.so 2>/dev/null)" || {
  echo "python/device_check.sh: the extension was not built (nanobind missing?)" >&2
  exit 1
}
cd python/tests
PYTHONPATH="$root/$build/python/pkg${PYTHONPATH:+:$PYTHONPATH}" \
  python3 -m pytest -q -rs -p no:cacheprovider .
