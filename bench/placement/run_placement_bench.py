#!/usr/bin/env python3
"""Issue #5's benchmark: batch-1 latency with thread pinning on vs off while a CPU-heavy
neighbour runs, the server's idle CPU with shm enabled, and startup to ready.

    /usr/bin/python3 bench/placement/run_placement_bench.py [--bin build/brainstem] [--seconds 5]

Prints a Markdown report (date, machine, commit, command line) for docs/benchmarks.md.
Standard library only; the load comes from `brainstem bench --json`.
"""

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_server(binary, workdir, sets):
    port_file = os.path.join(workdir, "port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    args = [binary, "serve", "--port", "0", "--port-file", port_file, "--format", "onnx",
            "--model-version", "0.1.0", "--artifact-dir", os.path.join(ROOT, "artifacts"),
            "--set", "shm.path=" + os.path.join(workdir, "s.sock")]
    for s in sets:
        args += ["--set", s]
    started = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not os.path.exists(port_file):
        if proc.poll() is not None:
            raise RuntimeError("server exited: " + proc.stderr.read())
        time.sleep(0.001)
    ready = time.monotonic() - started
    port = int(open(port_file).read())
    return proc, port, ready


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


def bench(binary, url, seconds):
    out = subprocess.run([binary, "bench", "--url", url, "-d", str(seconds), "--json"],
                         capture_output=True, text=True, timeout=seconds + 60)
    run = json.loads(out.stdout)["runs"][0]
    return run


def neighbour():
    """One CPU's worth of unrelated work: a busy loop at normal priority."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.path.join(ROOT, "build", "brainstem"))
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="bs-placement-")
    lines = []
    say = lines.append

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    say(f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs ({cpu}), "
        f"commit {commit}, load average {open('/proc/loadavg').read().split()[0]}.")
    say(f"Command: `{' '.join(shlex.quote(a) for a in sys.argv)}`")
    say("")

    # 1. Pinning on vs off with a CPU-heavy neighbour.
    variants = [
        ("pinning off", ["cpu.pinning=off"]),
        ("pinning auto (uniform plan: all CPUs shared)", ["cpu.pinning=auto"]),
        ("pinning auto, declared split: P = CPU 1, E = CPU 0",
         ["cpu.pinning=auto", "cpu.performance_cores=1", "cpu.efficiency_cores=0"]),
    ]
    say("| placement (one busy-loop neighbour running) | HTTP p50 | HTTP p99 | shm p50 | shm p99 |")
    say("|---|---:|---:|---:|---:|")
    for name, sets in variants:
        hog = neighbour()
        try:
            proc, port, _ = start_server(binary, work, sets + ["ocr.enabled=false"])
            try:
                time.sleep(0.5)
                h = bench(binary, f"http://127.0.0.1:{port}", args.seconds)
                s = bench(binary, "shm://" + os.path.join(work, "s.sock"), args.seconds)
            finally:
                stop(proc)
        finally:
            hog.kill()
            hog.wait()
        say(f"| {name} | {h['p50_us']:.1f} µs | {h['p99_us']:.1f} µs | "
            f"{s['p50_us']:.1f} µs | {s['p99_us']:.1f} µs |")
    say("")

    # 2. Idle CPU with shm enabled (after some traffic, so the spin windows have been used).
    proc, port, _ = start_server(binary, work, ["ocr.enabled=false"])
    try:
        bench(binary, "shm://" + os.path.join(work, "s.sock"), 1)
        time.sleep(1)
        before, t0 = metric(port, "process_cpu_seconds_total"), time.monotonic()
        time.sleep(10)
        after, t1 = metric(port, "process_cpu_seconds_total"), time.monotonic()
    finally:
        stop(proc)
    idle = 100 * (after - before) / (t1 - t0)
    say(f"Idle CPU over 10 s with shm enabled (after a burst of traffic): **{idle:.2f} %** of one "
        f"core (target ≤ 1 %).")
    say("")

    # 3. Startup to ready, five starts each.
    say("| startup (spawn to port file, 5 starts) | median | max |")
    say("|---|---:|---:|")
    for name, sets in [("ONNX only, OCR off", ["ocr.enabled=false"]),
                       ("ONNX, OCR on (default)", [])]:
        times = []
        for _ in range(5):
            proc, port, ready = start_server(binary, work, sets)
            times.append(ready * 1000)
            stop(proc)
        say(f"| {name} | {statistics.median(times):.0f} ms | {max(times):.0f} ms |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
