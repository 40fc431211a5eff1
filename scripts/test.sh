#!/usr/bin/env bash
# The whole test suite, as CI runs it: packages, a Release build with every backend and all
# tests (unit, integration against real servers on loopback, closed-loop driving), then
# AddressSanitizer+UBSan and ThreadSanitizer builds of the libraries that need no LibTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
scripts/build.sh

echo "== Release build: all tests"
(cd build && ctest --output-on-failure --timeout 900)

# The smallest build a user can ask for: ONNX only, no LibTorch, no screen perception. Every
# test registered there must pass (the OCR routes answer 503 naming BRAINSTEM_WITH_OCR).
echo "== Minimal build: -DBRAINSTEM_WITH_TORCH=OFF -DBRAINSTEM_WITH_OCR=OFF"
cmake -S . -B build-minimal -G Ninja -DCMAKE_BUILD_TYPE=Release -DBRAINSTEM_WITH_TORCH=OFF \
  -DBRAINSTEM_WITH_OCR=OFF >/dev/null
ninja -C build-minimal -j"$(nproc)"
(cd build-minimal && ctest --output-on-failure --timeout 900)

# Sanitizer builds skip the backends (LibTorch and OpenCV are not built with sanitizers);
# they cover the code we own: scheduler, parser, repository, config, telemetry.
sanitized_tests=(common_test telemetry_test scheduler_test policy_io_test predict_request_test
                 semver_test model_card_test ocr_card_test repository_test config_test topology_test
                 shm_layout_test shm_checksum_test shm_validation_test shm_server_test
                 shm_lobby_test client_unit_test perception_layout_test
                 perception_tile_cache_test perception_ocr_pipeline_test)
echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRAINSTEM_WITH_TORCH=OFF \
  -DBRAINSTEM_WITH_ONNX=OFF "-DBRAINSTEM_SANITIZE=address;undefined" >/dev/null
ninja -C build-asan -j"$(nproc)" "${sanitized_tests[@]}"
(cd build-asan && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --output-on-failure --timeout 600 -R "^($(IFS='|'; echo "${sanitized_tests[*]}"))$")

echo "== ThreadSanitizer (scheduler, telemetry, shm server and lobby)"
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRAINSTEM_WITH_TORCH=OFF \
  -DBRAINSTEM_WITH_ONNX=OFF -DBRAINSTEM_SANITIZE=thread >/dev/null
ninja -C build-tsan -j"$(nproc)" scheduler_test telemetry_test shm_server_test shm_lobby_test
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure --timeout 600 \
  -R "^(scheduler_test|telemetry_test|shm_server_test|shm_lobby_test)$")
