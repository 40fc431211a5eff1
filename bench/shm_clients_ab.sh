#!/usr/bin/env bash
# Batch-1 policy steps over shm with 1, 2 and 4 clients for two server binaries, alternated
# (A B A B ...) so that both see the same machine; `brainstem bench` of the first binary drives
# both. Server on CPU 1, clients on CPU 0 (as bench/run_transport_bench.sh with PIN=1).
# Usage: [CLIENTS="1 2 4"] bench/shm_clients_ab.sh BIN_A BIN_B [rounds, default 3] [seconds, default 4]
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1 b=$2 rounds=${3:-3} seconds=${4:-4}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  for bin in "$a" "$b"; do
    rm -f "$work/port" "$work/s.sock"
    taskset -c 1 "$bin" serve --port 0 --port-file "$work/port" --format onnx --model-version 0.1.0 \
      --artifact-dir artifacts --set shm.path="$work/s.sock" --set cpu.pinning=off 2>/dev/null &
    for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
    for clients in ${CLIENTS:-1 2 4}; do
      spin=""; [ "$clients" -gt 1 ] && spin="?spin_us=0"
      out=$(taskset -c 0 "$a" bench -d "$seconds" --url "shm://$work/s.sock$spin" -c "$clients" \
        --metrics-url "http://127.0.0.1:$(cat "$work/port")")
      echo "round $round  $bin  clients $clients  $(echo "$out" | grep -o 'p50 [0-9.]*' | head -1)" \
        " $(echo "$out" | grep -o 'throughput: [0-9]* requests/s')" \
        " $(echo "$out" | grep -o 'compute [0-9.]*')"
    done
    kill %1; wait %1 2>/dev/null || true
  done
done
