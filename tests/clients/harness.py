"""Harness for the client integration tests: starts the real `brainstem serve` with the shm
transport on a socket in a temporary directory, and finds the client library and probe.

Environment (CTest sets all three): BRAINSTEM_BIN (server), BRAINSTEM_CLIENT_LIB
(libbrainstem_client.so), BRAINSTEM_CLIENT_PROBE (the C++ probe program).
"""

import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "artifacts"
PYTHON_CLIENT_DIR = REPO_ROOT / "client" / "python"
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0

# The server's config keys for the shm transport (src/config/config.cc).
SHM_PATH_KEY = "shm.path"

_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "LD_LIBRARY_PATH", "TMPDIR")

if str(PYTHON_CLIENT_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_CLIENT_DIR))


def server_env():
    return {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}


def client_env():
    """Environment for a child Python process that imports brainstem_client."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PYTHON_CLIENT_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def brainstem_bin():
    path = os.environ.get("BRAINSTEM_BIN")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("BRAINSTEM_BIN is not set to an executable (run through CTest)")
    return path


def probe_bin():
    path = os.environ.get("BRAINSTEM_CLIENT_PROBE")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("BRAINSTEM_CLIENT_PROBE is not set to an executable (run through CTest)")
    return path


class ServerStartError(Exception):
    pass


class Server:
    """One `brainstem serve` with HTTP on a free port and shm on `socket_path`."""

    def __init__(self, workdir, socket_path, sets=(), ready_path=None):
        """`ready_path`: the file whose appearance means shm is up (default the socket; the
        lobby in /dev/shm for shm.rendezvous=named)."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.socket_path = str(socket_path)
        port_file = self.workdir / "port"
        if port_file.exists():
            port_file.unlink()
        self.stderr_path = self.workdir / "stderr.log"
        self.stdout_path = self.workdir / "stdout.log"
        args = [brainstem_bin(), "serve", "--port", "0", "--port-file", str(port_file),
                "--artifact-dir", str(ARTIFACTS), "--set", f"{SHM_PATH_KEY}={self.socket_path}"]
        for s in sets:
            args += ["--set", s]
        self.args = args
        # A socket file left by an earlier (killed) server must not pass for this one's.
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(args, stdout=out, stderr=err, env=server_env(),
                                         cwd=self.workdir)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if port_file.exists() and port_file.read_text().strip() and \
                    os.path.exists(ready_path or self.socket_path):
                self.port = int(port_file.read_text().strip())
                break
            rc = self.proc.poll()
            if rc is not None:
                text = self.stderr() + self.stdout()
                if re.search(r"unknown key '?shm", text):
                    pytest.skip("this brainstem has no shm transport yet (config rejects shm.*)")
                raise ServerStartError(f"brainstem exited with {rc}\n{' '.join(args)}\n{text}")
            if time.monotonic() > deadline:
                self.kill()
                raise ServerStartError(f"no port file / socket within {STARTUP_TIMEOUT_S} s\n"
                                       f"{self.stderr()}")
            time.sleep(0.02)
        self.http_url = f"http://127.0.0.1:{self.port}"
        self.shm_url = f"shm://{self.socket_path}"

    def shm(self, **query):
        """The shm URL with region options, e.g. shm(checksum="xxh3", frames=1)."""
        if not query:
            return self.shm_url
        return self.shm_url + "?" + "&".join(f"{k}={v}" for k, v in query.items())

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def stdout(self):
        return self.stdout_path.read_text(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def post_json(self, path, body):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", path, body=json.dumps(body),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    def metric(self, name):
        """Sum of every sample of metric `name` in /metrics (0 when absent)."""
        status, body = self.get("/metrics")
        assert status == 200
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name) and (line[len(name):len(name) + 1] in (" ", "{")):
                total += float(line.rsplit(" ", 1)[1])
        return total


def unique_shm_name(tag):
    """A shm.name no other test on this host uses (tests run in parallel)."""
    return f"t{os.getpid()}-{tag}-{random.randrange(1 << 30):x}"


def lobby_path(name):
    return f"/dev/shm/brainstem-{os.geteuid()}-{name}.lobby"


def dev_shm_files(name):
    """The lobby and region files of shm.name `name` in /dev/shm."""
    prefix = f"brainstem-{os.geteuid()}-{name}."
    return sorted(f for f in os.listdir("/dev/shm") if f.startswith(prefix))


def named_server(workdir, name, rendezvous="named"):
    """A server publishing the /dev/shm lobby of `name` (and its socket too for "both")."""
    workdir = Path(workdir)
    return Server(workdir, workdir / "s.sock",
                  sets=[f"shm.name={name}", f"shm.rendezvous={rendezvous}"],
                  ready_path=lobby_path(name))


# --- observations ------------------------------------------------------------------------


def random_observation(rng):
    return {"speed": round(rng.uniform(0.0, 80.0), 3),
            "steering": round(rng.uniform(-1.0, 1.0), 4),
            "sensors": [round(rng.uniform(-3.0, 3.0), 4) for _ in range(8)]}


def random_observations(n, seed):
    rng = random.Random(seed)
    return [random_observation(rng) for _ in range(n)]


def row_of(obs):
    return [obs["speed"], obs["steering"], *obs["sensors"]]


def as_f32(x):
    import struct
    return struct.unpack("f", struct.pack("f", x))[0]
