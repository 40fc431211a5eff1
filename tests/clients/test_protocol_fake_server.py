"""The clients against fake_shm_server.py, a stand-in written from docs/shm-protocol.md alone:
checks the client side of the protocol (handshake, descriptors, header validation, slot life
cycle, futex wake, checksums, reconnect on restart) without the real server."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import harness
from brainstem_client import ChecksumMismatch, Client, InvalidArgument, Unavailable

FAKE = Path(__file__).resolve().parent / "fake_shm_server.py"


class Fake:
    def __init__(self, path, *args):
        self.path = str(path)
        self.proc = subprocess.Popen([sys.executable, str(FAKE), self.path, *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "ready", self.proc.stderr.read()
        self.generation = int(line[1])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def expected_actions(rows, output_width=3):
    x = np.asarray(rows, dtype=np.float32)
    total = x.sum(axis=1, dtype=np.float32)
    scale = np.arange(1, output_width + 1, dtype=np.float32) * np.float32(0.01)
    return np.tanh(total[:, None] * scale[None, :]).astype(np.float32)


@pytest.fixture
def fake(tmp_path):
    f = Fake(tmp_path / "fake.sock")
    yield f
    f.kill()


def rows_of(n, seed):
    return np.array([harness.row_of(o) for o in harness.random_observations(n, seed)],
                    dtype=np.float32)


def test_handshake_and_predict(fake):
    with Client(f"shm://{fake.path}") as c:
        assert c.transport == "shm"
        assert c.generation == fake.generation
        assert c.input_width == 10 and c.output_width == 3
        assert c.output_names == ["throttle", "brake", "steer"]
        assert c.inputs == [("speed", 1), ("steering", 1), ("sensors", 8)]
        rows = rows_of(5, 1)
        assert (c.predict_raw(rows) == expected_actions(rows)).all()
        obs = harness.random_observations(3, 2)
        got = c.predict(obs)
        want = expected_actions([harness.row_of(o) for o in obs])
        assert [[a["throttle"], a["brake"], a["steer"]] for a in got] == want.tolist()
        t = c.last_timings
        assert t["total_ns"] >= t["server_ns"] > 0 and t["request_ns"] > 0


def test_names_for_a_non_carla_action_space(tmp_path):
    f = Fake(tmp_path / "w.sock", "--input-width", "4", "--output-width", "2")
    try:
        with Client(f"shm://{f.path}") as c:
            assert c.output_names == ["a0", "a1"]
            assert c.inputs == [("speed", 1), ("steering", 1), ("sensors", 2)]
            rows = np.ones((2, 4), dtype=np.float32)
            assert (c.predict_raw(rows) == expected_actions(rows, 2)).all()
    finally:
        f.kill()


def test_rows_limit_and_refused_hello(fake):
    with Client(f"shm://{fake.path}?rows=4") as c:
        with pytest.raises(InvalidArgument, match="rows must be 1..4"):
            c.predict_raw(rows_of(5, 3))
    # The fake has no xxh3: the server's refusal message reaches the caller.
    with pytest.raises(InvalidArgument, match="no xxh3"):
        Client(f"shm://{fake.path}?checksum=xxh3")
    with pytest.raises(Unavailable, match="cannot connect"):
        Client(f"shm://{fake.path}.missing")


def test_many_threads_few_slots_cpp(fake):
    row = ",".join(repr(harness.as_f32(v)) for v in rows_of(1, 4)[0])
    p = subprocess.run([harness.probe_bin(), "threads", f"shm://{fake.path}?slots=2", "6", "50",
                        row], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


def test_many_threads_python(fake):
    rows = rows_of(8, 5)
    want = expected_actions(rows)
    errors = []
    with Client(f"shm://{fake.path}?slots=3") as c:
        def run(k):
            try:
                for _ in range(40):
                    assert (c.predict_raw(rows[k:k + 1]) == want[k:k + 1]).all()
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
        ts = [threading.Thread(target=run, args=(k,)) for k in range(8)]
        [t.start() for t in ts]
        [t.join(60) for t in ts]
    assert not errors, errors[:3]


@pytest.mark.parametrize("checksum", ["crc32c", "sha256", "none", "default"])
def test_frames_and_checksums(fake, checksum):
    with Client(f"shm://{fake.path}?checksum={checksum}&frames=1&frame_bytes=65536") as c:
        img = (np.arange(64 * 48 * 3) % 251).astype(np.uint8)
        ack = c.submit_frame(img, 64, 48, "RGB")
        assert ack["result"] == f"64x48 fmt 3 {64 * 48 * 3} bytes"
        with c.frame_buffer() as buf:
            buf.memoryview()[:100] = bytes(range(100))
            ack = buf.submit(10, 10, "GRAY")
        assert ack["result"] == "10x10 fmt 4 100 bytes"
        c._set_test_option("corrupt_after_checksum", 1)
        if checksum == "none":
            c.predict_raw(rows_of(1, 6))  # nothing to detect
        else:
            with pytest.raises(ChecksumMismatch):
                c.predict_raw(rows_of(1, 6))
            with pytest.raises(ChecksumMismatch):
                c.submit_frame(img, 64, 48, "RGB")
        c._set_test_option("corrupt_after_checksum", 0)
        assert c.submit_frame(img, 64, 48, "RGB")["result"]


def test_frame_request_validated_by_client(fake):
    with Client(f"shm://{fake.path}?frames=1&frame_bytes=1024") as c:
        with pytest.raises(InvalidArgument, match="exceed"):
            c.submit_frame(bytes(4096), 32, 32, "BGRA")
        with pytest.raises(InvalidArgument, match="stride"):
            c.submit_frame(bytes(1024), 16, 16, "BGRA", stride=8)
        # The slot came back after each refusal.
        assert c.submit_frame(bytes(64), 4, 4, "BGRA")["result"]


def test_server_restart_reconnects_with_new_generation(tmp_path):
    sock = tmp_path / "r.sock"
    first = Fake(sock)
    c = Client(f"shm://{sock}")
    rows = rows_of(1, 7)
    want = expected_actions(rows)
    assert (c.predict_raw(rows) == want).all()
    first.kill()
    second = Fake(sock)
    try:
        start = time.monotonic()
        with pytest.raises(Unavailable, match="restarted"):
            c.predict_raw(rows)
        assert time.monotonic() - start < 2.0  # noticed by the futex loop's hang-up check
        assert (c.predict_raw(rows) == want).all()
        assert c.generation == second.generation != first.generation
    finally:
        c.close()
        second.kill()


def test_killed_client_does_not_disturb_others(fake):
    code = ("import sys, numpy as np\nfrom brainstem_client import Client\n"
            "c = Client(sys.argv[1])\nprint('ready', flush=True)\n"
            "while True: c.predict_raw(np.ones((1, 10), dtype=np.float32))\n")
    victim = subprocess.Popen([sys.executable, "-c", code, f"shm://{fake.path}"],
                              stdout=subprocess.PIPE, text=True, env=harness.client_env())
    assert victim.stdout.readline().strip() == "ready"
    with Client(f"shm://{fake.path}") as c:
        rows = rows_of(2, 8)
        for _ in range(20):
            assert (c.predict_raw(rows) == expected_actions(rows)).all()
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        victim.stdout.close()
        for _ in range(20):
            assert (c.predict_raw(rows) == expected_actions(rows)).all()
