"""Integration tests of the named /dev/shm rendezvous (docs/shm-protocol.md section 8) against the
real server: the C++ and Python clients over shm+named:// answer exactly as over the socket,
shm://name falls back to the lobby when there is no socket, a client killed mid-session gives its
claim and region back, a restarted server is found again with a new generation, and another uid
cannot open the lobby."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import harness
from harness import (as_f32, dev_shm_files, lobby_path, named_server, random_observations,
                     row_of, unique_shm_name)

from brainstem_client import Client, InvalidArgument, Unavailable

ACTIONS = ("throttle", "brake", "steer")


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """One server listening on its socket and publishing its lobby."""
    name = unique_shm_name("both")
    s = named_server(tmp_path_factory.mktemp("named"), name, rendezvous="both")
    s.name = name
    yield s
    rc = s.stop()
    assert rc == 0, f"brainstem exit code {rc}\n{s.stderr()}"
    assert dev_shm_files(name) == [], "the server left files in /dev/shm"


def test_reconnecting_often_never_fills_the_lobby(both):
    """Three times the lobby's 64 claims, one after another: each client's claim comes back as
    it leaves (LEAVING + ring), not only on the server's 100 ms lock probe."""
    for _ in range(3 * 64):
        with Client(f"shm+named://{both.name}") as c:
            assert c.generation != 0
    wait_until(lambda: both.metric("brainstem_shm_named_sessions") == 0)


def test_python_named_and_socket_identical(both):
    observations = random_observations(30, seed=21)
    before = both.metric("brainstem_shm_named_sessions_total")
    with Client(f"shm+named://{both.name}") as named, Client(both.shm()) as sock:
        assert named.transport == "shm"
        assert named.generation == sock.generation != 0
        for obs in observations:  # batch 1
            assert named.predict([obs]) == sock.predict([obs])
        assert named.predict(observations[:16]) == sock.predict(observations[:16])
        assert both.metric("brainstem_shm_named_sessions") == 1
        # Only the lobby is left in /dev/shm: the region's name goes once the client attached.
        assert dev_shm_files(both.name) == [os.path.basename(lobby_path(both.name))]
        with pytest.raises(InvalidArgument, match="finite"):
            named.predict([{"speed": float("nan"), "steering": 0.0, "sensors": [0.0] * 8}])
    assert both.metric("brainstem_shm_named_sessions_total") == before + 1
    assert wait_until(lambda: both.metric("brainstem_shm_named_sessions") == 0)


def test_cpp_client_named_and_socket_identical(both):
    observations = random_observations(5, seed=22)
    rows = [",".join(repr(as_f32(v)) for v in row_of(o)) for o in observations]
    answers = {}
    for url in (f"shm+named://{both.name}?checksum=crc32c", both.shm()):
        p = subprocess.run([harness.probe_bin(), "predict", url, *rows], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        answers[url.split(":")[0]] = json.loads(p.stdout)
    assert answers["shm+named"]["actions"] == answers["shm"]["actions"]
    assert answers["shm+named"]["timings"]["compute_ns"] > 0
    p = subprocess.run([harness.probe_bin(), "threads", f"shm+named://{both.name}?slots=4", "4",
                        "200", rows[0]], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["calls"] == 800


def test_frames_over_the_lobby(both):
    np = pytest.importorskip("numpy")
    frame = np.random.default_rng(23).integers(0, 256, size=(480, 640, 4), dtype=np.uint8)
    with Client(f"shm+named://{both.name}?frames=1&frame_bytes={640 * 480 * 4}") as c:
        ack = c.submit_frame(frame, 640, 480, "BGRA")
        assert ack["timings"]["total_ns"] > 0


WORKER = textwrap.dedent("""
    import sys
    from brainstem_client import Client
    url, n = sys.argv[1], int(sys.argv[2])
    obs = {"speed": 20.0, "steering": 0.1, "sensors": [0.5] * 8}
    with Client(url) as c:
        first = c.predict([obs])[0]
        print("ready", flush=True)
        i = 0
        while n < 0 or i < n:
            assert c.predict([obs])[0] == first
            i += 1
    print("done", i, flush=True)
""")


def spawn(url, n):
    return subprocess.Popen([sys.executable, "-c", WORKER, url, str(n)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=harness.client_env())


def test_client_killed_mid_session_gives_its_claim_back(tmp_path):
    name = unique_shm_name("kill")
    server = named_server(tmp_path, name)
    try:
        url = f"shm+named://{name}"
        deaths = server.metric("brainstem_shm_client_deaths_total")
        survivor = spawn(url, 3000)
        assert survivor.stdout.readline().strip() == "ready", survivor.stderr.read()
        for _ in range(3):
            victim = spawn(url, -1)
            assert victim.stdout.readline().strip() == "ready", victim.stderr.read()
            time.sleep(0.1)  # mid-stream
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            victim.stdout.close()
            victim.stderr.close()
        out, err = survivor.communicate(timeout=120)
        assert survivor.returncode == 0, out + err
        assert "done 3000" in out
        # The probe notices each dead client within ~100 ms; every region goes.
        assert wait_until(lambda: server.metric("brainstem_shm_named_sessions") == 0)
        assert server.metric("brainstem_shm_client_deaths_total") == deaths + 4
        assert wait_until(lambda: server.metric("brainstem_shm_bytes_mapped") == 0)
        assert dev_shm_files(name) == [os.path.basename(lobby_path(name))]
        with Client(url) as fresh:
            assert len(fresh.predict(random_observations(1, seed=24))) == 1
        assert server.alive(), server.stderr()
    finally:
        assert server.stop() == 0, server.stderr()
    assert dev_shm_files(name) == []


def test_shm_name_falls_back_to_the_lobby_without_a_socket(tmp_path):
    name = unique_shm_name("fallback")
    server = named_server(tmp_path, name)  # rendezvous=named: no socket at all
    try:
        assert not os.path.exists(server.socket_path)
        env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path / "xdg"))
        code = textwrap.dedent(f"""
            from brainstem_client import Client
            with Client("shm://{name}") as c:
                print(c.generation, len(c.predict([{{"speed": 1.0, "steering": 0.0,
                                                     "sensors": [0.0] * 8}}])))
        """)
        env["PYTHONPATH"] = harness.client_env()["PYTHONPATH"]
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        generation, n = p.stdout.split()
        assert int(generation) != 0 and n == "1"
        # An explicit socket path never falls back.
        with pytest.raises(Unavailable, match="cannot connect"):
            Client(f"shm://{tmp_path}/nothing.sock")
    finally:
        assert server.stop() == 0, server.stderr()
    with pytest.raises(Unavailable, match="no lobby"):
        Client(f"shm+named://{name}")


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_server_restart_under_a_named_client(tmp_path, how):
    name = unique_shm_name("restart")
    first = named_server(tmp_path / "a", name)
    obs = random_observations(1, seed=25)
    second = None
    try:
        client = Client(f"shm+named://{name}")
        before = client.predict(obs)
        generation = client.generation
        if how == "sigterm":
            assert first.stop() == 0, first.stderr()
        else:
            first.kill()  # leaves a stale lobby behind, which the next server replaces
            assert os.path.exists(lobby_path(name))
        with pytest.raises(Unavailable, match="restarted"):
            client.predict(obs)
        with pytest.raises(Unavailable):
            client.predict(obs)  # nobody serves the lobby yet
        second = named_server(tmp_path / "b", name)
        assert client.predict(obs) == before
        assert client.generation != generation
        client.close()
    finally:
        first.kill()
        if second is not None:
            assert second.stop() == 0, second.stderr()
    assert dev_shm_files(name) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")
def test_another_uid_cannot_open_the_lobby(tmp_path):
    name = unique_shm_name("uid")
    server = named_server(tmp_path, name)
    child = textwrap.dedent(f"""
        import os
        os.setgid(65534); os.setuid(65534)
        try:
            os.open({lobby_path(name)!r}, os.O_RDWR)
            print("OPENED")
        except PermissionError as e:
            print("PermissionError", e)
        from brainstem_client import Client
        try:
            Client("shm+named://{name}")
            print("CONNECTED")
        except Exception as e:
            print(type(e).__name__, e)
    """)
    try:
        p = subprocess.run([sys.executable, "-c", child], env=harness.client_env(),
                           capture_output=True, text=True, timeout=60)
        assert "OPENED" not in p.stdout and "CONNECTED" not in p.stdout, p.stdout + p.stderr
        assert "PermissionError" in p.stdout, p.stdout + p.stderr
        # The other uid looks for its own lobby name, which does not exist.
        assert "Unavailable" in p.stdout and "brainstem-65534-" in p.stdout, p.stdout
        with Client(f"shm+named://{name}") as c:  # the server's own uid still gets in
            assert len(c.predict(random_observations(1, seed=26))) == 1
    finally:
        assert server.stop() == 0, server.stderr()
