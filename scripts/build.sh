#!/usr/bin/env bash
# Configures and builds brainstem in ./build (Release, warnings as errors).
# Usage: scripts/build.sh [extra cmake -D options...]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBRAINSTEM_WERROR=ON "$@" >/dev/null
ninja -C build -j"$(nproc)"
