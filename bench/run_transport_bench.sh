#!/usr/bin/env bash
# Batch-1 policy steps over shm (socket and named lobby rendezvous) vs HTTP vs the FastAPI peer,
# and 1080p frames over shm, in one run, all driven by the same load generator (`brainstem
# bench`, C++ client library).
# Usage: bench/run_transport_bench.sh [seconds per run, default 5]
# Env: BIN (default build/brainstem), FORMAT (onnx|torchscript, default onnx), ARTIFACTS
#      (default artifacts),
#      PIN=1 (default) puts the server on CPU 1 and the load generator on CPU 0.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
bin=${BIN:-build/brainstem}
format=${FORMAT:-onnx}
artifacts=${ARTIFACTS:-artifacts}
pin=${PIN:-1}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
server_cpu=(); client_cpu=()
if [ "$pin" = 1 ]; then server_cpu=(taskset -c 1); client_cpu=(taskset -c 0); fi

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), format $format, pin $pin, load $(cut -d' ' -f1-3 /proc/loadavg)"

"${server_cpu[@]}" "$bin" serve --port 0 --port-file "$work/port" --format "$format" \
  --model-version 0.1.0 --artifact-dir "$artifacts" --set shm.path="$work/s.sock" \
  --set cpu.pinning=off --set shm.rendezvous=both --set shm.name="bench$$" 2>"$work/server.log" &
for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
shm="shm://$work/s.sock"
run() { echo "## $1"; shift; "${client_cpu[@]}" "$bin" bench -d "$seconds" "$@" --metrics-url "http://127.0.0.1:$port"; }
run "shm, 1 client" --url "$shm"
run "shm, 2 clients (spin_us=0: they share one CPU)" --url "$shm?spin_us=0" -c 2
run "shm, 4 clients (spin_us=0)" --url "$shm?spin_us=0" -c 4
run "http, 1 client" --url "http://127.0.0.1:$port"
run "http, 2 clients" --url "http://127.0.0.1:$port" -c 2
run "shm named (lobby), 1 client" --url "shm+named://bench$$"
run "shm, paced 500 steps/s (the server sleeps between steps)" --url "$shm" --rate 500
run "shm named (lobby), paced 500 steps/s (woken through the waker thread)" \
  --url "shm+named://bench$$" --rate 500
echo "## connect + close, socket vs lobby (Python client, 200 each, p50 / p90 µs)"
"${client_cpu[@]}" /usr/bin/python3 - "$shm" "shm+named://bench$$" <<'PY'
import sys, time
sys.path.insert(0, "client/python")
from brainstem_client import Client
for url in sys.argv[1:]:
    samples = []
    for _ in range(200):
        t = time.perf_counter_ns()
        Client(url).close()
        samples.append((time.perf_counter_ns() - t) / 1000)
    samples.sort()
    print(f"{url.split(':')[0]:10s} p50 {samples[100]:.0f} us  p90 {samples[180]:.0f} us")
PY
run "1920x1080 BGRA frame in place, no checksum" --url "$shm?checksum=none&frames=2" --frame 1920x1080
run "1920x1080 BGRA frame in place, xxh3" --url "$shm?checksum=xxh3&frames=2" --frame 1920x1080
kill %1; wait %1 2>/dev/null || true

peer_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${server_cpu[@]}" /usr/bin/python3 bench/peer/server.py --port "$peer_port" \
  --artifact-dir artifacts/lane-keeping/v0.1.0 >"$work/peer.log" 2>&1 &
for _ in $(seq 400); do
  curl -sf "http://127.0.0.1:$peer_port/healthz" >/dev/null && break
  sleep 0.05
done
echo "## FastAPI peer (uvicorn + PyTorch), http, 1 client"
"${client_cpu[@]}" "$bin" bench -d "$seconds" --url "http://127.0.0.1:$peer_port"
