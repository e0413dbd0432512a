#!/usr/bin/env bash
# The README's test command: configure, build and run every test (CTest; GPU tests skip without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset default
cmake --build --preset default -j 2
ctest --preset default
