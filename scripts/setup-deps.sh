#!/usr/bin/env bash
# Installs every Debian package brainstem needs to build, test and benchmark.
# Idempotent: packages already present are left alone.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git curl ca-certificates
  libboost-dev libsimdjson-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  libhwloc-dev hwloc libxxhash-dev libssl-dev libeigen3-dev
  libtorch-dev libopenblas0-pthread libopencv-dnn-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-torch python3-numpy python3-yaml python3-onnx python3-opencv
  python3-fastapi python3-uvicorn python3-requests python3-pytest
  wrk
  chromium  # headless dashboard test (tests/integration/test_ops.py)
  # screen perception (docs/perception.md): OCR, capture, and the Xvfb end-to-end tests
  libtesseract-dev libleptonica-dev tesseract-ocr-eng libpng-dev
  libxcb1-dev libxcb-shm0-dev libx11-dev libxext-dev
  xvfb xterm x11-utils xdotool fonts-dejavu-core imagemagick
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
