#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running server: installs the Debian
# packages, builds, and serves the embedded default model repository (artifacts/) on
# http://127.0.0.1:8080 (override with PORT, SERVER_HOST, MODEL_VERSION, ... or --set).
# Usage: scripts/run.sh [brainstem serve options...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
scripts/build.sh
# No --config: config/default.yaml equals the built-in defaults (a test keeps them in sync), but
# a file sets every key explicitly, and explicit ocr.* keys override the OCR model card.
exec build/brainstem serve "$@"
