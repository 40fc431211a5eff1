#!/usr/bin/python3
"""HTTP /predict benchmark: brainstem (TorchScript, ONNX) against the FastAPI + PyTorch peer.

One run of this script, on one machine, measures for every server in --servers:

  * startup to ready: from spawning the process until GET /healthz first answers 200
    (polled every 2 ms);
  * idle RSS: VmRSS from /proc/<pid>/status after a short warm-up, before any load;
  * wrk at 1 connection (-t1 -c1) and at 32 connections (-t2 -c32): p50, p90, p99, requests/s,
    errors (each measured run preceded by an unreported warm-up run);
  * RSS under load: the largest VmRSS sampled while the measured runs went on;
  * the batch-size table: OBS = 1, 4, 8, 16, 32 observations per request at 1 connection,
    p50 and observations/s (= requests/s x OBS).

--tuning (and --variant) add extra brainstem configurations measured at 1 and 32 connections, to
compare settings such as server.io_threads or scheduler.inline_when_idle on this machine.

It prints the tables, and writes them as JSON (--json) and Markdown (--markdown) together with
the date, the machine, the git commit and the command line. Only the standard library is used;
wrk is Debian's (/usr/bin/wrk) driven by bench/wrk/predict.lua, which prints one WRK_RESULT line.

wrk runs on the same machine as the server and competes with it for the CPUs: on a 2-core
machine the numbers are those of client and server sharing two cores, which is how the targets
were defined (same machine, same run), not the server's capacity alone.

  /usr/bin/python3 bench/run_http_bench.py --json /tmp/bench.json --markdown /tmp/bench.md
  /usr/bin/python3 bench/run_http_bench.py --quick --servers brainstem-onnx,fastapi-peer
  /usr/bin/python3 bench/run_http_bench.py --tuning --servers brainstem-torchscript
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRK_SCRIPT = os.path.join(REPO, "bench", "wrk", "predict.lua")
ALL_SERVERS = ("brainstem-torchscript", "brainstem-onnx", "fastapi-peer")
PEER = "fastapi-peer"
OBS_SIZES = (1, 4, 8, 16, 32)
# (label, wrk threads, connections)
LOADS = (("c1", 1, 1), ("c32", 2, 32))
HEALTH_POLL_S = 0.002
CLK_TCK = os.sysconf("SC_CLK_TCK")
STARTUP_TIMEOUT_S = 120.0
RSS_SAMPLE_S = 0.2
WRK_RESULT = re.compile(r"WRK_RESULT (.*)$", re.M)

# The targets, checked in the Markdown output.
TARGET_P50_RATIO = 10.0       # p50 at 1 connection <= 1/10 of the peer's
TARGET_P50_US = 50.0          # aim
TARGET_RPS_RATIO = 10.0       # requests/s at 32 connections >= 10x the peer's
TARGET_STARTUP_S = {"torchscript": 1.0, "onnx": 0.2}
TARGET_IDLE_RSS_MB = {"torchscript": 200.0, "onnx": 50.0}

# The tuning grid for 2 cores: I/O threads x running a lone request on the I/O thread.
TUNING_GRID = [
    ("io1-inline", {"server.io_threads": "1", "scheduler.inline_when_idle": "true"}),
    ("io1-queued", {"server.io_threads": "1", "scheduler.inline_when_idle": "false"}),
    ("io2-inline", {"server.io_threads": "2", "scheduler.inline_when_idle": "true"}),
    ("io2-queued", {"server.io_threads": "2", "scheduler.inline_when_idle": "false"}),
]


def log(message):
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- machine facts

def read_text(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def machine_facts():
    cpu_model = ""
    for line in read_text("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in read_text("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "mem_total_mb": round(mem_kb / 1024),
        "wrk": tool_version(["wrk", "-v"]),
        "python": sys.version.split()[0],
    }


def tool_version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else ""


def git_commit():
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return commit + (" (uncommitted changes)" if dirty else "")


def load_average():
    return read_text("/proc/loadavg").split()[:3]


# ----------------------------------------------------------------------------- processes

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    """VmRSS of pid in MiB, or None once the process is gone."""
    for line in read_text(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return None


def http_status(port, method, path, body=None, timeout=2.0):
    """Status code of one request, or None if the server does not answer (yet)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


class RssSampler:
    """Samples VmRSS of one process on a background thread; peak_mb is the largest seen."""

    def __init__(self, pid):
        self.pid = pid
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            value = rss_mb(self.pid)
            if value is not None:
                self.peak_mb = max(self.peak_mb, value)
            self._stop.wait(RSS_SAMPLE_S)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class Server:
    """One server under test: how to start it, and its process once started."""

    def __init__(self, label, kind, fmt, args, workdir):
        self.label = label          # e.g. brainstem-onnx, brainstem-onnx[io2-queued]
        self.kind = kind            # brainstem | peer
        self.fmt = fmt              # torchscript | onnx
        self.args = args
        self.workdir = workdir
        self.proc = None
        self.port = None
        self.log_path = os.path.join(workdir, re.sub(r"[^A-Za-z0-9_.-]", "_", label) + ".log")

    def start(self):
        """Spawns the server and returns seconds from spawn until GET /healthz answered 200."""
        port_file = None
        argv = list(self.args.brainstem_cmd if self.kind == "brainstem" else self.args.peer_cmd)
        if self.kind == "brainstem":
            port_file = os.path.join(self.workdir, "port")
            if os.path.exists(port_file):
                os.unlink(port_file)
            argv += ["--format", self.fmt, "--port", "0", "--port-file", port_file]
            for key, value in self.sets:
                argv += ["--set", f"{key}={value}"]
        else:
            self.port = free_port()
            argv += ["--port", str(self.port)]
        self.argv = argv
        logf = open(self.log_path, "w")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        logf.close()
        deadline = t0 + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode} during "
                                   f"startup:\n{self.log_tail()}")
            if self.port is None:
                text = read_text(port_file).strip()
                if text:
                    self.port = int(text)
            if self.port is not None and http_status(self.port, "GET", "/healthz", timeout=1.0) == 200:
                return time.monotonic() - t0
            time.sleep(HEALTH_POLL_S)
        self.stop()
        raise RuntimeError(f"{self.label} not ready after {STARTUP_TIMEOUT_S} s:\n{self.log_tail()}")

    def stop(self):
        """SIGTERM, then wait; SIGKILL only if it does not stop within 15 s. Returns exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log(f"{self.label}: no exit 15 s after SIGTERM, killing")
            self.proc.kill()
            return self.proc.wait()

    def log_tail(self, lines=20):
        return "\n".join(read_text(self.log_path).splitlines()[-lines:])


# ----------------------------------------------------------------------------- wrk

def predict_body(obs):
    one = {"speed": 30.5, "steering": 0.05,
           "sensors": [0.12, -0.03, 0.004, 0.006, 0.008, 0.01, 1.2, 0.5]}
    return json.dumps({"observations": [one] * obs, "deterministic": True})


def cpu_busy_s():
    """Busy CPU seconds of the whole machine so far (all CPUs, /proc/stat, idle and iowait out)."""
    fields = read_text("/proc/stat").splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields[:8]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK


def process_cpu_s(pid):
    """utime + stime of pid in seconds, or 0 once it is gone."""
    text = read_text(f"/proc/{pid}/stat")
    if not text:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_cpu_s():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(port, threads, connections, duration_s, obs, server_pid=None):
    """One wrk run. With server_pid, also splits the machine's CPU time during the run into the
    server's, wrk's and everyone else's (a noise gauge: others' builds share these CPUs)."""
    busy0, server0, wrk0 = cpu_busy_s(), process_cpu_s(server_pid or 0), children_cpu_s()
    t0 = time.monotonic()
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--timeout", "5s",
           "-s", WRK_SCRIPT, f"http://127.0.0.1:{port}"]
    env = dict(os.environ, OBS=str(obs))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env,
                         timeout=duration_s + 60)
    match = WRK_RESULT.search(out.stdout)
    if out.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    result = {}
    for field in match.group(1).split():
        key, value = field.split("=", 1)
        result[key] = float(value) if "." in value else int(value)
    # wrk counts only status >= 400 as errors; a wrong 2xx/3xx is not expected from either server.
    result["obs_per_s"] = result["rps"] * obs
    if server_pid is not None:
        wall = time.monotonic() - t0
        busy = cpu_busy_s() - busy0
        server = process_cpu_s(server_pid) - server0
        wrk = children_cpu_s() - wrk0
        # In CPUs (cores busy on average); "other" includes this script's few samples.
        result["cpu_server"] = round(server / wall, 2)
        result["cpu_wrk"] = round(wrk / wall, 2)
        result["cpu_other"] = round(max(0.0, busy - server - wrk) / wall, 2)
    return result


def measure_load(server, threads, connections, obs, args):
    run_wrk(server.port, threads, connections, args.warmup_duration, obs)  # not reported
    result = run_wrk(server.port, threads, connections, args.duration, obs, server.proc.pid)
    log(f"  {server.label:<34} -t{threads} -c{connections:<3} OBS={obs:<3} "
        f"p50 {result['p50_us']:9.1f} us  p99 {result['p99_us']:9.1f} us  "
        f"{result['rps']:10.1f} req/s  errors {result['errors']}  CPUs server "
        f"{result['cpu_server']:.2f} wrk {result['cpu_wrk']:.2f} other {result['cpu_other']:.2f}")
    return result


def bench_server(server, args, full):
    """Everything for one server: startup, idle RSS, loads; full=False runs the loads only."""
    record = {"label": server.label, "kind": server.kind, "format": server.fmt,
              "sets": dict(server.sets)}
    log(f"{server.label}: starting")
    record["loadavg_at_start"] = load_average()
    record["startup_s"] = server.start()
    record["argv"] = server.argv
    record["pid"] = server.proc.pid
    # Warm-up before idle RSS: a few requests of every batch size touch the allocator, the
    # JSON paths and the backend once, so idle RSS is the steady state, not the cold one.
    for obs in OBS_SIZES:
        for _ in range(20):
            status = http_status(server.port, "POST", "/predict", predict_body(obs))
            if status != 200:
                raise RuntimeError(f"{server.label}: warm-up /predict answered {status}:\n"
                                   f"{server.log_tail()}")
    time.sleep(0.5)
    record["idle_rss_mb"] = rss_mb(server.proc.pid)
    log(f"  startup {record['startup_s'] * 1000:.1f} ms, idle RSS {record['idle_rss_mb']:.1f} MiB")
    try:
        with RssSampler(server.proc.pid) as sampler:
            record["loads"] = {}
            for label, threads, connections in LOADS:
                record["loads"][label] = measure_load(server, threads, connections, 1, args)
            if full:
                record["batch"] = {}
                for obs in OBS_SIZES:
                    if obs == 1:  # the same measurement as the 1-connection load above
                        record["batch"][str(obs)] = record["loads"]["c1"]
                    else:
                        record["batch"][str(obs)] = measure_load(server, 1, 1, obs, args)
        record["load_rss_mb"] = sampler.peak_mb
    finally:
        record["exit_code"] = server.stop()
    log(f"  RSS under load {record['load_rss_mb']:.1f} MiB, exit code {record['exit_code']}")
    return record


# ----------------------------------------------------------------------------- report

def median_record(records):
    """One record from the same measurement repeated: the median of every number (each metric
    on its own, so p50 and requests/s may come from different rounds), errors summed; the rest
    from the first."""
    first = records[0]
    if len(records) == 1:
        return first
    if isinstance(first, dict):
        # Errors add up: one failed request in any round is worth reporting.
        return {k: sum(r[k] for r in records) if k == "errors" else
                median_record([r[k] for r in records]) for k in first}
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return statistics.median(records)
    return first


def ratio(a, b):
    return a / b if a and b else None


def fmt(value, digits=1):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def cpu_split(load):
    if "cpu_server" not in load:
        return "n/a"
    return f"{load['cpu_server']:.2f}/{load['cpu_wrk']:.2f}/{load['cpu_other']:.2f}"


def fmt_ratio(value):
    return "n/a" if value is None else f"{value:.1f}x"


def tables(result):
    """The report as (title, header, rows) tables; shared by the console and Markdown output."""
    servers = result["servers"]
    peer = next((s for s in servers if s["kind"] == "peer"), None)
    out = []

    header = ["server", "startup to ready (ms)", "idle RSS (MiB)", "RSS under load (MiB)",
              "c1 p50 (us)", "c1 p99 (us)", "c1 req/s", "c32 p50 (us)", "c32 p99 (us)",
              "c32 req/s", "errors", "c1 p50 ratio (peer/this)", "c32 req/s ratio (this/peer)",
              "CPUs server/wrk/other c32"]
    rows = []
    for s in servers:
        c1, c32 = s["loads"]["c1"], s["loads"]["c32"]
        p50_ratio = rps_ratio = None
        if peer is not None and s is not peer:
            p50_ratio = ratio(peer["loads"]["c1"]["p50_us"], c1["p50_us"])
            rps_ratio = ratio(c32["rps"], peer["loads"]["c32"]["rps"])
        rows.append([s["label"], fmt(s["startup_s"] * 1000), fmt(s["idle_rss_mb"]),
                     fmt(s["load_rss_mb"]), fmt(c1["p50_us"]), fmt(c1["p99_us"]), fmt(c1["rps"], 0),
                     fmt(c32["p50_us"]), fmt(c32["p99_us"]), fmt(c32["rps"], 0),
                     str(int(c1["errors"] + c32["errors"])), fmt_ratio(p50_ratio), fmt_ratio(rps_ratio),
                     cpu_split(c32)])
    out.append(("Latency, throughput, startup, memory (OBS=1)", header, rows))

    header = ["server"] + [f"OBS={n} p50 (us)" for n in OBS_SIZES] + \
             [f"OBS={n} obs/s" for n in OBS_SIZES]
    rows = []
    for s in servers:
        if "batch" not in s:
            continue
        b = s["batch"]
        rows.append([s["label"]] + [fmt(b[str(n)]["p50_us"]) for n in OBS_SIZES] +
                    [fmt(b[str(n)]["obs_per_s"], 0) for n in OBS_SIZES])
    if peer is not None and "batch" in peer:
        for s in servers:
            if s is peer or "batch" not in s:
                continue
            rows.append([f"{s['label']} / peer (obs/s)"] + [""] * len(OBS_SIZES) +
                        [fmt_ratio(ratio(s["batch"][str(n)]["obs_per_s"],
                                         peer["batch"][str(n)]["obs_per_s"])) for n in OBS_SIZES])
    if rows:
        out.append(("Observations per request at 1 connection", header, rows))

    if result["variants"]:
        header = ["variant", "--set", "c1 p50 (us)", "c1 req/s", "c32 p50 (us)", "c32 p99 (us)",
                  "c32 req/s", "errors", "CPUs server/wrk/other c32"]
        rows = []
        for v in result["variants"]:
            c1, c32 = v["loads"]["c1"], v["loads"]["c32"]
            sets = " ".join(f"{k}={val}" for k, val in v["sets"].items())
            rows.append([v["label"], sets, fmt(c1["p50_us"]), fmt(c1["rps"], 0), fmt(c32["p50_us"]),
                         fmt(c32["p99_us"]), fmt(c32["rps"], 0),
                         str(int(c1["errors"] + c32["errors"])), cpu_split(c32)])
        out.append(("brainstem tuning variants", header, rows))

    if "rounds" in result:
        header = ["round", "server", "c1 p50 (us)", "c1 req/s", "c1 CPUs server/wrk/other",
                  "c32 p50 (us)", "c32 req/s", "c32 CPUs server/wrk/other"]
        rows = []
        for index, (main_round, variant_round) in enumerate(
                zip(result["rounds"]["servers"], result["rounds"]["variants"])):
            for s in main_round + variant_round:
                c1, c32 = s["loads"]["c1"], s["loads"]["c32"]
                rows.append([str(index + 1), s["label"], fmt(c1["p50_us"]), fmt(c1["rps"], 0),
                             cpu_split(c1), fmt(c32["p50_us"]), fmt(c32["rps"], 0),
                             cpu_split(c32)])
        out.append(("Every round (the spread behind the medians)", header, rows))

    targets = target_rows(servers, peer)
    if targets:
        out.append(("Targets", ["server", "target", "measured", "met"], targets))
    return out


def target_rows(servers, peer):
    rows = []

    def check(label, target, measured, ok):
        rows.append([label, target, measured, "n/a" if ok is None else ("yes" if ok else "no")])

    for s in servers:
        if s["kind"] != "brainstem":
            continue
        c1, c32 = s["loads"]["c1"], s["loads"]["c32"]
        if peer is not None:
            p50_ratio = ratio(peer["loads"]["c1"]["p50_us"], c1["p50_us"])
            check(s["label"], f"c1 p50 <= 1/{TARGET_P50_RATIO:g} of peer",
                  f"{fmt(c1['p50_us'])} us vs {fmt(peer['loads']['c1']['p50_us'])} us "
                  f"({fmt_ratio(p50_ratio)})", p50_ratio is not None and p50_ratio >= TARGET_P50_RATIO)
        check(s["label"], f"c1 p50 <= {TARGET_P50_US:g} us (aim)", f"{fmt(c1['p50_us'])} us",
              c1["p50_us"] <= TARGET_P50_US)
        if peer is not None:
            rps_ratio = ratio(c32["rps"], peer["loads"]["c32"]["rps"])
            check(s["label"], f"c32 req/s >= {TARGET_RPS_RATIO:g}x peer",
                  f"{fmt(c32['rps'], 0)} vs {fmt(peer['loads']['c32']['rps'], 0)} "
                  f"({fmt_ratio(rps_ratio)})", rps_ratio is not None and rps_ratio >= TARGET_RPS_RATIO)
        limit = TARGET_STARTUP_S[s["format"]]
        what = "LibTorch" if s["format"] == "torchscript" else "ONNX only"
        check(s["label"], f"startup <= {limit:g} s ({what})", f"{s['startup_s']:.3f} s",
              s["startup_s"] <= limit)
        limit = TARGET_IDLE_RSS_MB[s["format"]]
        check(s["label"], f"idle RSS <= {limit:g} MB ({what})", f"{fmt(s['idle_rss_mb'])} MiB",
              s["idle_rss_mb"] * 1.048576 <= limit)
    return rows


def render_text(title, header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = [title, "-" * len(title)]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        lines.append("  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def is_number(text):
    try:
        float(str(text).replace(",", "").rstrip("x"))
        return True
    except ValueError:
        return False


def render_markdown_table(header, rows):
    # Numbers right-aligned, text (names, settings, targets) left-aligned.
    numeric = [all(is_number(c) or c in ("", "n/a") for c in col) for col in zip(*rows)] \
        if rows else [False] * len(header)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def render_markdown(result):
    run = result["run"]
    m = result["machine"]
    lines = [
        f"- date (UTC): {run['date_utc']}",
        f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_total_mb']} MiB RAM, "
        f"kernel {m['kernel']}; {m['wrk']}",
        f"- commit: `{run['commit']}`",
        f"- command: `{run['command']}`",
        f"- wrk: {run['duration_s']} s per measured run after an unreported "
        f"{run['warmup_duration_s']} s warm-up; c1 = `-t1 -c1`, c32 = `-t2 -c32`; wrk runs on the "
        f"same {m['nproc']} CPUs as the server; " + (
            f"median of {run['rounds']} rounds (servers interleaved)" if run.get("rounds", 1) > 1
            else "one round"),
        f"- load average before / after: {' '.join(run['loadavg_before'])} / "
        f"{' '.join(run['loadavg_after'])}",
    ]
    if run["brainstem_sets"]:
        lines.append("- brainstem `--set`: " +
                     " ".join(f"`{s}`" for s in run["brainstem_sets"]))
    for title, header, rows in tables(result):
        lines += ["", f"### {title}", "", render_markdown_table(header, rows)]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main

def parse_variant(text):
    """NAME:key=value[;key=value...] -> (NAME, [(key, value)])."""
    name, sep, rest = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:key=value[;key=value], got {text!r}")
    sets = []
    for item in filter(None, rest.split(";")):
        key, eq, value = item.partition("=")
        if not eq:
            raise argparse.ArgumentTypeError(f"expected key=value in {text!r}, got {item!r}")
        sets.append((key.strip(), value.strip()))
    return name, sets


def parse_set(text):
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10, help="seconds per measured wrk run (10)")
    p.add_argument("--warmup-duration", type=int, default=2,
                   help="seconds of the unreported wrk run before each measured one (2)")
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat everything this many times, servers interleaved, and report the "
                        "median of each number (all rounds are kept in the JSON)")
    p.add_argument("--quick", action="store_true",
                   help="smoke check: 2 s measured runs, 1 s warm-up runs")
    p.add_argument("--servers", default=",".join(ALL_SERVERS),
                   help=f"comma-separated subset of {','.join(ALL_SERVERS)}")
    p.add_argument("--brainstem-bin", default=os.path.join(REPO, "build-bench", "brainstem"))
    p.add_argument("--artifact-dir", default="artifacts", help="brainstem's model repository")
    p.add_argument("--model-version", default="0.1.0")
    p.add_argument("--peer-artifact-dir", default=None,
                   help="the peer's version directory (default: <artifact-dir>/lane-keeping/"
                        "v<model-version>)")
    p.add_argument("--python", default="/usr/bin/python3", help="interpreter for the peer")
    p.add_argument("--set", dest="sets", action="append", type=parse_set, default=[],
                   metavar="KEY=VALUE", help="brainstem config override, for every brainstem "
                   "run (repeatable), e.g. --set server.io_threads=2")
    p.add_argument("--tuning", action="store_true",
                   help="also measure brainstem with server.io_threads 1|2 x "
                        "scheduler.inline_when_idle true|false (c1 and c32 only)")
    p.add_argument("--variant", action="append", type=parse_variant, default=[],
                   metavar="NAME:K=V[;K=V]", help="an extra brainstem configuration, measured "
                   "at c1 and c32 only, on top of --set (repeatable)")
    p.add_argument("--variant-formats", default="torchscript,onnx",
                   help="brainstem formats the variants run with (torchscript,onnx)")
    p.add_argument("--json", help="write the results here as JSON")
    p.add_argument("--from-json", metavar="FILE",
                   help="measure nothing: print and write (--markdown) the report of an earlier "
                        "run's JSON")
    p.add_argument("--markdown", help="write the tables here as Markdown")
    args = p.parse_args(argv)

    if args.from_json:
        with open(args.from_json) as f:
            return report(json.load(f), None, args.markdown)
    if args.quick:
        args.duration, args.warmup_duration = 2, 1
    if args.rounds < 1 or args.duration < 1 or args.warmup_duration < 1:
        p.error("--rounds, --duration and --warmup-duration must be at least 1")
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in servers:
        if s not in ALL_SERVERS:
            p.error(f"unknown server {s!r} (known: {', '.join(ALL_SERVERS)})")
    variant_formats = [f.strip() for f in args.variant_formats.split(",") if f.strip()]
    for f in variant_formats:
        if f not in ("torchscript", "onnx"):
            p.error(f"unknown variant format {f!r}")
    variants = (TUNING_GRID if args.tuning else []) + \
        [(name, dict(sets)) for name, sets in args.variant]
    needs_brainstem = any(s != PEER for s in servers) or variants
    if needs_brainstem and not os.access(args.brainstem_bin, os.X_OK):
        p.error(f"{args.brainstem_bin} is not an executable; build it first (see bench/README.md)")
    peer_dir = args.peer_artifact_dir or os.path.join(args.artifact_dir, "lane-keeping",
                                                      "v" + args.model_version)
    args.brainstem_cmd = [args.brainstem_bin, "serve", "--artifact-dir", args.artifact_dir,
                          "--model-version", args.model_version]
    args.peer_cmd = [args.python, os.path.join(REPO, "bench", "peer", "server.py"),
                     "--artifact-dir", peer_dir]

    result = {
        "run": {
            "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            "command": shlex.join([sys.executable] + sys.argv if argv is None
                                  else [sys.executable, sys.argv[0]] + list(argv)),
            "commit": git_commit(),
            "duration_s": args.duration,
            "rounds": args.rounds,
            "warmup_duration_s": args.warmup_duration,
            "brainstem_sets": [f"{k}={v}" for k, v in args.sets],
            "loadavg_before": load_average(),
        },
        "machine": machine_facts(),
        "servers": [],
        "variants": [],
    }
    # Rounds interleave the servers (A B C, A B C, ...) so that a burst of someone else's load
    # lands on one round of each rather than on every run of one server.
    rounds_servers, rounds_variants = [], []
    with tempfile.TemporaryDirectory(prefix="brainstem-bench-") as workdir:
        for round_index in range(args.rounds):
            if args.rounds > 1:
                log(f"=== round {round_index + 1} of {args.rounds}")
            this_round = []
            for name in servers:
                if name == PEER:
                    server = Server(name, "peer", "torchscript", args, workdir)
                    server.sets = []
                else:
                    server = Server(name, "brainstem", name.split("-", 1)[1], args, workdir)
                    server.sets = list(args.sets)
                this_round.append(bench_server(server, args, full=True))
            rounds_servers.append(this_round)
            this_round = []
            for fmt_name in variant_formats if variants else []:
                for vname, vsets in variants:
                    server = Server(f"brainstem-{fmt_name}[{vname}]", "brainstem", fmt_name, args,
                                    workdir)
                    server.sets = list(args.sets) + list(vsets.items())
                    this_round.append(bench_server(server, args, full=False))
            rounds_variants.append(this_round)
    result["servers"] = [median_record(list(r)) for r in zip(*rounds_servers)]
    result["variants"] = [median_record(list(r)) for r in zip(*rounds_variants)]
    if args.rounds > 1:
        result["rounds"] = {"servers": rounds_servers, "variants": rounds_variants}
    result["run"]["loadavg_after"] = load_average()

    return report(result, args.json, args.markdown)


def report(result, json_path, markdown_path):
    print()
    for title, header, rows in tables(result):
        print(render_text(title, header, rows))
        print()
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        log(f"wrote {json_path}")
    if markdown_path:
        with open(markdown_path, "w") as f:
            f.write(render_markdown(result))
        log(f"wrote {markdown_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
