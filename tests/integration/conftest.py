"""Harness for the HTTP integration tests: starts the real brainstem binary on a loopback port.

The binary comes from the environment variable BRAINSTEM_BIN (CTest sets it). Every server is
started with a scrubbed environment so that a developer's PORT / MODEL_VERSION / ARTIFACT_DIR
cannot change what a test sees, waits for its --port-file, and must exit 0 on SIGTERM.
"""

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "artifacts"
MODEL_DIR = ARTIFACTS / "lane-keeping"
FORMATS = ("torchscript", "onnx")
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0

# Variables that config.cc maps onto keys; none may leak from the caller into a test server.
_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "LD_LIBRARY_PATH", "TMPDIR")


def server_env():
    return {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}


def brainstem_bin():
    path = os.environ.get("BRAINSTEM_BIN")
    if not path:
        pytest.fail("BRAINSTEM_BIN is not set (run through CTest, or export it to the "
                    "path of the built brainstem binary)")
    if not os.access(path, os.X_OK):
        pytest.fail(f"BRAINSTEM_BIN={path} is not an executable file")
    return path


class ServerStartError(Exception):
    def __init__(self, message, returncode, stdout, stderr):
        super().__init__(message)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"Response({self.status}, {self.body[:500]!r})"


def serve_args(artifact_dir, port_file, fmt=None, version=None, sets=()):
    # Each server gets its own shared-memory socket beside its port file, so test servers never
    # collide with each other or with a server a developer runs on the default socket.
    args = [brainstem_bin(), "serve", "--port", "0", "--port-file", str(port_file),
            "--artifact-dir", str(artifact_dir),
            "--set", f"shm.path={Path(port_file).with_suffix('.sock')}"]
    if fmt:
        args += ["--format", fmt]
    if version:
        args += ["--model-version", version]
    for s in sets:
        args += ["--set", s]
    return args


class Server:
    """One running brainstem process."""

    def __init__(self, workdir, artifact_dir=ARTIFACTS, fmt=None, version=None, sets=()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.format = fmt
        port_file = self.workdir / "port"
        if port_file.exists():
            port_file.unlink()
        self.stdout_path = self.workdir / "stdout.log"
        self.stderr_path = self.workdir / "stderr.log"
        self.args = serve_args(artifact_dir, port_file, fmt, version, sets)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=err, env=server_env(),
                                         cwd=self.workdir)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if port_file.exists():
                text = port_file.read_text().strip()
                if text:
                    self.port = int(text)
                    break
            rc = self.proc.poll()
            if rc is not None:
                raise ServerStartError(
                    f"brainstem exited with {rc} before writing its port file\n"
                    f"command: {' '.join(self.args)}\nstderr:\n{self.stderr()}\n"
                    f"stdout:\n{self.stdout()}", rc, self.stdout(), self.stderr())
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise ServerStartError(
                    f"brainstem did not write its port file within {STARTUP_TIMEOUT_S} s\n"
                    f"stderr:\n{self.stderr()}", None, self.stdout(), self.stderr())
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def stdout(self):
        return self.stdout_path.read_text(errors="replace")

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, wait, and return the exit code (kills after STOP_TIMEOUT_S)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return "did not exit within %.0f s of SIGTERM" % STOP_TIMEOUT_S
        return self.proc.returncode

    def assert_stops_cleanly(self):
        rc = self.stop()
        assert rc == 0, (f"brainstem exit code after SIGTERM: {rc}\nstderr:\n{self.stderr()}"
                         f"\nstdout tail:\n{self.stdout()[-3000:]}")

    # --- HTTP helpers -------------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=60):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            if body is not None:
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, resp.getheaders(), data)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body=body, **kw)

    def predict(self, observations, **fields):
        body = {"observations": observations}
        body.update(fields)
        return self.post("/predict", body)

    def predict_ok(self, observations, **fields):
        r = self.predict(observations, **fields)
        assert r.status == 200, r
        return r.json()

    def metrics(self):
        r = self.get("/metrics")
        assert r.status == 200, r
        return parse_prometheus(r.body.decode())

    def assert_healthy(self):
        """A good /predict still succeeds (used after every bad input)."""
        assert self.alive(), f"server died; stderr:\n{self.stderr()}"
        obs = fixed_observation()
        r = self.predict([obs])
        assert r.status == 200, r
        assert len(r.json()["actions"]) == 1


def start_or_skip(workdir, fmt=None, **kw):
    """Starts a server; skips the test when the format's backend is not built in."""
    try:
        return Server(workdir, fmt=fmt, **kw)
    except ServerStartError as e:
        if e.returncode == 1 and "not built" in (e.stderr + e.stdout):
            pytest.skip(f"{fmt} backend not built into this brainstem")
        raise


def run_server_expect_exit(workdir, artifact_dir=ARTIFACTS, fmt=None, version=None, sets=(),
                           timeout=60):
    """Runs `brainstem serve` that must fail at startup; returns (rc, stdout, stderr)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port_file = workdir / "port"
    args = serve_args(artifact_dir, port_file, fmt, version, sets)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=server_env(), cwd=workdir)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"server did not exit within {timeout} s (expected a startup failure); "
                    f"port file written: {port_file.exists()}")
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


# --- observations ------------------------------------------------------------------------


def fixed_observation():
    return {"speed": 30.0, "steering": 0.05,
            "sensors": [0.1, -0.02, 0.01, 0.01, 0.015, 0.02, 1.5, 0.3]}


def random_observation(rng):
    return {"speed": round(rng.uniform(0.0, 80.0), 3),
            "steering": round(rng.uniform(-1.0, 1.0), 4),
            "sensors": [round(rng.uniform(-3.0, 3.0), 4) for _ in range(8)]}


def random_observations(n, seed):
    rng = random.Random(seed)
    return [random_observation(rng) for _ in range(n)]


ACTION_BOUNDS = {"throttle": (0.0, 1.0), "brake": (0.0, 1.0), "steer": (-1.0, 1.0)}


# How far a batched answer may be from the same observation answered alone. ONNX (OpenCV DNN)
# is bit-exact across batch layouts, so its tolerance is 0. LibTorch's BLAS takes different
# kernels for different batch shapes (gemv for one row, gemm micro-kernels whose accumulation
# order depends on the row's position), which moves results by 1-2 float32 ulps (measured up
# to 1.2e-7 on values in [-1, 1]). docs/backends.md explains; scheduler.max_batch_size: 1 gives
# bit-exact single-request answers for TorchScript too.
BATCH_TOLERANCE = {"onnx": 0.0, "torchscript": 1e-6}


def actions_close(a, b, fmt):
    tolerance = BATCH_TOLERANCE.get(fmt, 0.0)
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= tolerance for k in a)


def assert_actions_in_bounds(actions):
    for i, a in enumerate(actions):
        assert set(a) == set(ACTION_BOUNDS), f"actions[{i}] keys {sorted(a)}"
        for name, (low, high) in ACTION_BOUNDS.items():
            v = a[name]
            assert isinstance(v, float) or isinstance(v, int), f"actions[{i}].{name}={v!r}"
            assert low <= v <= high, f"actions[{i}].{name}={v} outside [{low}, {high}]"


# --- Prometheus text ---------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    def __init__(self, samples, types):
        self.samples = samples  # list of (name, labels dict, value)
        self.types = types

    def find(self, name, **labels):
        return [(l, v) for n, l, v in self.samples
                if n == name and all(l.get(k) == str(x) for k, x in labels.items())]

    def value(self, name, default=None, **labels):
        found = self.find(name, **labels)
        if not found:
            if default is not None:
                return default
            raise KeyError(f"no sample {name} {labels}")
        assert len(found) == 1, f"{name} {labels} matches {len(found)} samples"
        return found[0][1]

    def names(self):
        return {n for n, _, _ in self.samples}


def parse_prometheus(text):
    """Parses the text exposition format strictly enough to catch malformed output."""
    samples, types = [], {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            assert len(parts) == 4, f"line {lineno}: bad TYPE line {line!r}"
            assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), line
            types[parts[2]] = parts[3]
            continue
        if line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"line {lineno}: not a Prometheus sample: {line!r}"
        name, _, label_text, value = m.groups()
        labels = {}
        if label_text:
            consumed = ",".join(f'{k}="{v}"' for k, v in _LABEL.findall(label_text))
            assert consumed == label_text, f"line {lineno}: bad labels {label_text!r}"
            labels = dict(_LABEL.findall(label_text))
        samples.append((name, labels, float(value)))
    for name, _, _ in samples:
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or family in types, f"sample {name} has no # TYPE line"
    return Metrics(samples, types)


# --- fixtures ----------------------------------------------------------------------------


class ServerPool:
    """Default servers (newest stable version), one per format, started on first use."""

    def __init__(self, tmp_path_factory):
        self.tmp_path_factory = tmp_path_factory
        self.servers = {}
        self.skipped = {}

    def get(self, fmt):
        if fmt in self.skipped:
            pytest.skip(self.skipped[fmt])
        if fmt not in self.servers:
            try:
                self.servers[fmt] = Server(self.tmp_path_factory.mktemp(f"server-{fmt}"), fmt=fmt)
            except ServerStartError as e:
                if e.returncode == 1 and "not built" in (e.stderr + e.stdout):
                    self.skipped[fmt] = f"{fmt} backend not built into this brainstem"
                    pytest.skip(self.skipped[fmt])
                raise
        return self.servers[fmt]

    def close(self):
        failures = []
        for fmt, srv in self.servers.items():
            rc = srv.stop()
            if rc != 0:
                failures.append(f"{fmt} server exit code after SIGTERM: {rc}\n{srv.stderr()}")
        assert not failures, "\n".join(failures)


@pytest.fixture(scope="session")
def server_pool(tmp_path_factory):
    pool = ServerPool(tmp_path_factory)
    yield pool
    pool.close()


@pytest.fixture(scope="session", params=FORMATS)
def server(request, server_pool):
    """The default server for each backend format (skipped when the format is not built)."""
    return server_pool.get(request.param)


@pytest.fixture(scope="session")
def any_server(server_pool):
    """A default server of whichever format is built in, for format-neutral tests."""
    for fmt in FORMATS:
        try:
            return server_pool.get(fmt)
        except pytest.skip.Exception:
            continue
    pytest.fail("this brainstem has neither the torchscript nor the onnx backend built in")


def raw_exchange(port, data, read=True, timeout=10):
    """Sends raw bytes on a fresh connection; returns what the server sent back until close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return b""
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        s.close()
