#!/bin/bash
# Does 1-connection latency depend on whether the CPUs are idle? On a KVM guest an idle vCPU
# halts, and waking it costs far more than a context switch; two nice-19 spinners keep both
# vCPUs awake while taking (almost) no CPU from the server or wrk when those want it.
#
#   bench/wrk/vcpu_wake_check.sh [brainstem-binary] [seconds]
#
# Prints wrk's WRK_RESULT for each backend: idle CPUs, CPUs kept awake, and 32 connections with
# CPUs kept awake. Run it on an otherwise quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build-bench/brainstem}
secs=${2:-10}
work=$(mktemp -d)
spinners=()
cleanup() {
  for pid in "${spinners[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
for fmt in onnx torchscript; do
  "$bin" serve --artifact-dir artifacts --model-version 0.1.0 --format "$fmt" --port 0 \
    --port-file "$work/port" > "$work/server.log" 2>&1 &
  server=$!
  while [ ! -s "$work/port" ]; do sleep 0.05; done
  url="http://127.0.0.1:$(cat "$work/port")"
  wrk -t1 -c1 -d2s -s bench/wrk/predict.lua "$url" > /dev/null
  echo "$fmt c1, CPUs idle:        $(wrk -t1 -c1 -d${secs}s -s bench/wrk/predict.lua "$url" | grep WRK_RESULT)"
  nice -n 19 /usr/bin/python3 -c "while True: pass" & spinners+=($!)
  nice -n 19 /usr/bin/python3 -c "while True: pass" & spinners+=($!)
  sleep 0.5
  echo "$fmt c1, CPUs kept awake:  $(wrk -t1 -c1 -d${secs}s -s bench/wrk/predict.lua "$url" | grep WRK_RESULT)"
  echo "$fmt c32, CPUs kept awake: $(wrk -t2 -c32 -d${secs}s -s bench/wrk/predict.lua "$url" | grep WRK_RESULT)"
  kill "${spinners[@]}"; wait "${spinners[@]}" 2>/dev/null || true; spinners=()
  kill -TERM "$server"; wait "$server" || true
  rm -f "$work/port"
done
