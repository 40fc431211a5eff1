"""Integration tests of the client libraries (C++, C ABI, Python) against the real server, over
shm and over http (issue #3). Every test starts from a running server (module fixture `server`)
unless it needs its own (restart)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import harness
from harness import Server, as_f32, random_observations, row_of

from brainstem_client import ChecksumMismatch, Client, InvalidArgument, Unavailable, Unsupported

ACTIONS = ("throttle", "brake", "steer")


def http_json_actions(server, observations):
    """Actions straight from POST /predict with the standard library (no brainstem client),
    rounded to float32 as the server computed them."""
    body = {"observations": [{"speed": as_f32(o["speed"]), "steering": as_f32(o["steering"]),
                              "sensors": [as_f32(v) for v in o["sensors"]]}
                             for o in observations], "deterministic": True}
    status, reply = server.post_json("/predict", body)
    assert status == 200, reply
    return [{k: as_f32(a[k]) for k in ACTIONS} for a in reply["actions"]]


# --- same answers over every path ---------------------------------------------------------


def test_python_shm_and_http_identical(server):
    observations = random_observations(40, seed=1)
    with Client(server.shm()) as shm, Client(server.http_url) as web:
        assert shm.transport == "shm" and web.transport == "http"
        assert shm.input_width == web.input_width == 10
        assert shm.output_names == web.output_names == list(ACTIONS)
        assert shm.generation != 0 and web.generation == 0
        reference = http_json_actions(server, observations)
        for i, obs in enumerate(observations):  # batch 1, as a simulator steps
            a_shm = shm.predict([obs])[0]
            a_web = web.predict([obs])[0]
            assert a_shm == a_web, (i, obs)
        batch_shm = shm.predict(observations[:16])
        batch_web = web.predict(observations[:16])
        assert batch_shm == batch_web == reference[:16]
        for a in batch_shm:
            assert 0.0 <= a["throttle"] <= 1.0 and 0.0 <= a["brake"] <= 1.0
            assert -1.0 <= a["steer"] <= 1.0


def test_python_numpy_rows_and_timings(server):
    np = pytest.importorskip("numpy")
    observations = random_observations(8, seed=2)
    rows = np.array([row_of(o) for o in observations], dtype=np.float32)
    with Client(server.shm()) as shm, Client(server.http_url) as web:
        out_shm = shm.predict_raw(rows)
        out_web = web.predict_raw(rows)
        assert out_shm.shape == (8, 3) and out_shm.dtype == np.float32
        assert (out_shm == out_web).all()
        assert shm.predict(rows) == shm.predict(observations)
        t = shm.last_timings
        assert t["total_ns"] > 0 and t["server_ns"] > 0 and t["compute_ns"] > 0
        assert t["server_ns"] <= t["total_ns"]
        web.predict(rows)
        assert web.last_timings["total_ns"] > 0 and web.last_timings["request_ns"] == 0


def test_cpp_client_shm_and_http_identical(server):
    observations = random_observations(6, seed=3)
    rows = [",".join(repr(as_f32(v)) for v in row_of(o)) for o in observations]
    answers = {}
    for url in (server.shm(), server.http_url):
        p = subprocess.run([harness.probe_bin(), "predict", url, *rows], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        answers[url] = json.loads(p.stdout)
    shm, web = answers[server.shm()], answers[server.http_url]
    assert shm["transport"] == "shm" and web["transport"] == "http"
    assert shm["actions"] == web["actions"]
    with Client(server.shm()) as py:
        py_actions = [[a[k] for k in ACTIONS] for a in py.predict(observations)]
    assert [[as_f32(v) for v in r] for r in shm["actions"]] == py_actions
    assert shm["timings"]["compute_ns"] > 0 and shm["timings"]["total_ns"] > 0


def test_errors_carry_the_servers_message(server):
    bad = {"speed": 300.0, "steering": 0.0, "sensors": [0.0] * 8}
    with Client(server.http_url) as web:
        with pytest.raises(InvalidArgument, match=r"speed.*within \[0, 200\]"):
            web.predict([bad])
        with pytest.raises(InvalidArgument, match="exactly 8"):
            web.predict([{"speed": 1.0, "steering": 0.0, "sensors": [0.0] * 7}])
        with pytest.raises(Unsupported):
            web.submit_frame(b"\0" * 16, 2, 2)
    with Client(server.shm()) as shm:
        with pytest.raises(InvalidArgument, match="finite"):
            shm.predict([{"speed": float("nan"), "steering": 0.0, "sensors": [0.0] * 8}])
        with pytest.raises(InvalidArgument):
            shm.predict(random_observations(65, seed=4))  # more rows than the region's 64


# --- many clients ---------------------------------------------------------------------------


def test_cpp_client_many_threads_one_region(server):
    row = ",".join(repr(as_f32(v)) for v in row_of(random_observations(1, seed=5)[0]))
    p = subprocess.run([harness.probe_bin(), "threads", server.shm(slots=4), "8", "300", row],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["calls"] == 2400


WORKER = textwrap.dedent("""
    import json, sys
    from brainstem_client import Client
    url, n, obs, expected = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
    with Client(url) as c:
        print("ready", flush=True)
        i = 0
        while n < 0 or i < n:
            got = c.predict([obs])[0]
            for k, v in expected.items():
                assert abs(got[k] - v) <= 1e-5, (i, got, expected)
            i += 1
    print("done", i, flush=True)
""")


def spawn_worker(url, n, obs, expected):
    return subprocess.Popen([sys.executable, "-c", WORKER, url, str(n), json.dumps(obs),
                             json.dumps(expected)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=harness.client_env())


def test_many_client_processes_at_once(server):
    obs = random_observations(1, seed=6)[0]
    expected = http_json_actions(server, [obs])[0]
    workers = [spawn_worker(server.shm(slots=2), 300, obs, expected) for _ in range(8)]
    for w in workers:
        out, err = w.communicate(timeout=180)
        assert w.returncode == 0, out + err
        assert "done 300" in out


def test_python_threads_share_one_client(server):
    observations = random_observations(4, seed=7)
    expected = http_json_actions(server, observations)
    errors = []
    with Client(server.shm(slots=4)) as c:
        def run(k):
            try:
                for _ in range(200):
                    got = c.predict([observations[k]])[0]
                    assert all(abs(got[a] - expected[k][a]) <= 1e-5 for a in ACTIONS), got
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=run, args=(k % 4,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not errors, errors[:3]


def test_client_killed_mid_stream_others_keep_going(server):
    obs = random_observations(1, seed=8)[0]
    expected = http_json_actions(server, [obs])[0]
    survivor = spawn_worker(server.shm(), 2000, obs, expected)
    for _ in range(3):
        victim = spawn_worker(server.shm(), -1, obs, expected)  # loops until killed
        assert victim.stdout.readline().strip() == "ready", victim.stderr.read()
        time.sleep(0.2)  # mid-stream: it is submitting as fast as it can
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        victim.stdout.close()
        victim.stderr.close()
    out, err = survivor.communicate(timeout=180)
    assert survivor.returncode == 0, out + err
    assert server.alive(), server.stderr()
    with Client(server.shm()) as fresh:
        got = fresh.predict([obs])[0]
    assert all(abs(got[a] - expected[a]) <= 1e-5 for a in ACTIONS)


# --- server restart --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_server_restart_under_connected_client(tmp_path, how):
    sock = tmp_path / "r.sock"
    first = Server(tmp_path / "a", sock)
    obs = random_observations(1, seed=9)
    try:
        client = Client(first.shm())
        before = client.predict(obs)
        generation = client.generation
        if how == "sigterm":
            assert first.stop() == 0, first.stderr()
        else:
            first.kill()
            if sock.exists():  # a killed server leaves its socket file behind
                sock.unlink()
        second = Server(tmp_path / "b", sock)
    except BaseException:
        first.kill()
        raise
    try:
        with pytest.raises(Unavailable, match="restarted"):
            client.predict(obs)
        after = client.predict(obs)
        assert after == before
        assert client.generation != generation
        client.close()
    finally:
        rc = second.stop()
    assert rc == 0, second.stderr()


# --- frames and checksums --------------------------------------------------------------------


def test_frame_round_trip_xxh3(server):
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(10)
    frame = rng.integers(0, 256, size=(1080, 1920, 4), dtype=np.uint8)
    with Client(server.shm(checksum="xxh3", frames=1, frame_bytes=1920 * 1080 * 4)) as c:
        ack = c.submit_frame(frame, 1920, 1080, "BGRA")
        assert ack["timings"]["total_ns"] > 0
        ack = c.submit_frame(frame.tobytes(), 1920, 1080, "BGRA")
        assert ack["timings"]["total_ns"] > 0
        # Zero copy: write in place, then submit.
        with c.frame_buffer() as buf:
            assert buf.capacity >= 1920 * 1080 * 4
            buf.array()[:frame.nbytes] = frame.reshape(-1)
            ack = buf.submit(1920, 1080, "BGRA")
        assert ack["timings"]["total_ns"] > 0
        gray = rng.integers(0, 256, size=(100, 130), dtype=np.uint8)
        c.submit_frame(gray, 130, 100, "GRAY")
        with pytest.raises(InvalidArgument):
            c.submit_frame(b"\0" * 10, 4, 4, "RGBA")  # fewer bytes than stride*height


def test_cpp_probe_frame(server):
    p = subprocess.run([harness.probe_bin(), "frame", server.shm(checksum="crc32c", frames=1),
                        "640", "480"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["sequence"] == 1


@pytest.mark.parametrize("checksum", ["xxh3", "crc32c", "sha256"])
def test_corrupted_payload_is_refused_and_counted(server, checksum):
    np = pytest.importorskip("numpy")
    metric = "brainstem_shm_checksum_failures_total"
    before = server.metric(metric)
    obs = random_observations(2, seed=11)
    with Client(server.shm(checksum=checksum, frames=1, frame_bytes=1 << 20)) as c:
        good = c.predict(obs)
        frame = np.arange(256 * 256 * 4, dtype=np.uint32).astype(np.uint8)
        c.submit_frame(frame, 256, 256, "RGBA")
        c._set_test_option("corrupt_after_checksum", 1)
        with pytest.raises(ChecksumMismatch):
            c.predict(obs)
        with pytest.raises(ChecksumMismatch):
            c.submit_frame(frame, 256, 256, "RGBA")
        c._set_test_option("corrupt_after_checksum", 0)
        assert c.predict(obs) == good  # the region still works
    assert server.metric(metric) == before + 2


def test_cpp_probe_corrupt(server):
    row = ",".join(repr(as_f32(v)) for v in row_of(random_observations(1, seed=12)[0]))
    p = subprocess.run([harness.probe_bin(), "corrupt", server.shm(checksum="xxh3"), row],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    assert json.loads(p.stdout)["code"] == "DATA_LOSS"


# --- the closed-loop example -----------------------------------------------------------------


def test_closed_loop_example_same_trajectory(server):
    script = harness.REPO_ROOT / "examples" / "lane_keeping" / "closed_loop_client.py"
    p = subprocess.run([sys.executable, str(script), "--shm", server.shm(), "--http",
                        server.http_url, "--steps", "600"], capture_output=True, text=True,
                       timeout=300, env=harness.client_env())
    assert p.returncode == 0, p.stdout + p.stderr
    assert "identical trajectories" in p.stdout


# --- permissions ----------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")
def test_client_of_another_uid_is_refused(tmp_path):
    """The socket is 0600 in a 0700 directory; even where a deployment opens those permissions
    up, the server checks the peer's uid (SO_PEERCRED) and refuses the handshake."""
    import shutil
    import tempfile
    # A directory outside pytest's private (0700) tree, so that opening it up is enough.
    directory = tempfile.mkdtemp(prefix="bs-uid-", dir="/tmp")
    sock = os.path.join(directory, "s.sock")
    server = Server(tmp_path, sock)
    child = textwrap.dedent(f"""
        import os, sys
        os.setgid(65534); os.setuid(65534)
        from brainstem_client import Client
        try:
            Client({("shm://" + sock)!r})
        except Exception as e:
            print(type(e).__name__, e)
            sys.exit(0)
        print("CONNECTED")
    """)

    def attempt():
        return subprocess.run([sys.executable, "-c", child], env=harness.client_env(),
                              capture_output=True, text=True, timeout=60)

    try:
        # 1. Default permissions: the kernel stops the other uid before the server sees it.
        result = attempt()
        assert "CONNECTED" not in result.stdout, result.stdout + result.stderr
        assert "ermission" in result.stdout, result.stdout + result.stderr

        # 2. Permissions opened up: the server's own uid check refuses the handshake.
        os.chmod(directory, 0o777)
        os.chmod(sock, 0o777)
        result = attempt()
        assert "CONNECTED" not in result.stdout, result.stdout + result.stderr
        assert "uid" in result.stdout, result.stdout + result.stderr
        # The server keeps serving its own uid.
        with Client(server.shm()) as c:
            assert len(c.predict(random_observations(1, seed=40))) == 1
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
