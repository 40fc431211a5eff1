"""Startup: version selection, refusal of bad artifacts, and clean shutdown."""

import shutil
import time

import pytest

from conftest import MODEL_DIR, Server, fixed_observation, run_server_expect_exit


def _identity(srv):
    health = srv.get("/healthz").json()
    meta = srv.get("/metadata").json()
    versions = srv.get("/versions").json()
    predicted = srv.predict_ok([fixed_observation()])
    return health["version"], meta["version"], versions["current"], predicted["version"]


def test_model_version_flag_selects_old_version(tmp_path):
    srv = Server(tmp_path, version="0.1.0")
    try:
        assert _identity(srv) == ("0.1.0",) * 4
        assert srv.predict_ok([fixed_observation()], version="0.1.0")["version"] == "0.1.0"
        r = srv.predict([fixed_observation()], version="0.2.0")
        assert r.status == 404, r
        assert r.json()["error"] == "NOT_FOUND"
        current = [v["version"] for v in srv.get("/versions").json()["versions"] if v["current"]]
        assert current == ["0.1.0"]
        srv.assert_healthy()
    finally:
        srv.assert_stops_cleanly()


def test_versions_give_different_actions(tmp_path, any_server):
    srv = Server(tmp_path, version="0.1.0")
    try:
        old = srv.predict_ok([fixed_observation()])["actions"]
        new = any_server.predict_ok([fixed_observation()])["actions"]
        assert old != new
    finally:
        srv.assert_stops_cleanly()


def test_allow_prerelease_still_prefers_a_release(tmp_path):
    # docs/model-card.md: a release always wins over a newer pre-release; allow_prerelease only
    # lets the implicit choice fall back to a pre-release when no release is usable.
    srv = Server(tmp_path, sets=["model.allow_prerelease=true"])
    try:
        assert _identity(srv) == ("0.2.0",) * 4
    finally:
        srv.assert_stops_cleanly()


@pytest.fixture
def prerelease_only(tmp_path):
    root = tmp_path / "artifacts"
    shutil.copytree(MODEL_DIR / "v0.3.0-rc.1", root / "lane-keeping" / "v0.3.0-rc.1")
    return root


def test_allow_prerelease_serves_release_candidate(tmp_path, prerelease_only):
    srv = Server(tmp_path / "run", artifact_dir=prerelease_only,
                 sets=["model.allow_prerelease=true"])
    try:
        assert _identity(srv) == ("0.3.0-rc.1",) * 4
        entry = [v for v in srv.get("/versions").json()["versions"] if v["current"]]
        assert len(entry) == 1 and entry[0]["stable"] is False
    finally:
        srv.assert_stops_cleanly()


def test_prerelease_only_repository_refused_by_default(tmp_path, prerelease_only):
    rc, out, err = run_server_expect_exit(tmp_path / "run", artifact_dir=prerelease_only)
    assert rc != 0
    assert "0.3.0-rc.1" in err, f"stderr={err!r}\nstdout={out!r}"


def test_prerelease_by_explicit_version(tmp_path):
    srv = Server(tmp_path, version="0.3.0-rc.1")
    try:
        assert srv.get("/healthz").json()["version"] == "0.3.0-rc.1"
    finally:
        srv.assert_stops_cleanly()


def test_unknown_model_version_exits_with_message(tmp_path):
    rc, out, err = run_server_expect_exit(tmp_path, version="9.9.9")
    assert rc != 0
    assert "9.9.9" in err, f"stderr does not name the version:\nstderr={err!r}\nstdout={out!r}"
    for v in ("0.1.0", "0.2.0", "0.3.0-rc.1"):
        assert v in err, f"stderr does not list available version {v}:\n{err}"
    assert not (tmp_path / "port").exists()


def test_invalid_config_value_exits_2(tmp_path):
    rc, out, err = run_server_expect_exit(tmp_path, sets=["server.max_body_bytes=lots"])
    assert rc == 2, (rc, err)
    assert "server.max_body_bytes" in err
    rc, out, err = run_server_expect_exit(tmp_path, sets=["server.no_such_key=1"])
    assert rc == 2, (rc, err)
    assert "server.no_such_key" in err


def _flip_byte(path, offset_fraction=0.5):
    data = bytearray(path.read_bytes())
    i = int(len(data) * offset_fraction)
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def artifact_copy(tmp_path):
    root = tmp_path / "artifacts"
    shutil.copytree(MODEL_DIR, root / "lane-keeping")
    return root


@pytest.mark.parametrize("fmt,filename", [("torchscript", "model.pt"), ("onnx", "model.onnx")])
def test_corrupted_artifact_refused(tmp_path, artifact_copy, fmt, filename):
    target = artifact_copy / "lane-keeping" / "v0.2.0" / filename
    _flip_byte(target)
    rc, out, err = run_server_expect_exit(tmp_path / "run", artifact_dir=artifact_copy, fmt=fmt)
    if rc == 1 and "not built" in err + out:
        pytest.skip(f"{fmt} backend not built")
    assert rc != 0
    assert filename in err, f"stderr does not name {filename}:\nstderr={err!r}\nstdout={out!r}"
    assert "sha256" in err.lower() or "hash" in err.lower(), err


def test_corrupted_both_artifacts_refused(tmp_path, artifact_copy):
    for name in ("model.pt", "model.onnx"):
        _flip_byte(artifact_copy / "lane-keeping" / "v0.2.0" / name)
    rc, out, err = run_server_expect_exit(tmp_path / "run", artifact_dir=artifact_copy)
    assert rc != 0
    assert "model.pt" in err or "model.onnx" in err, f"stderr={err!r}\nstdout={out!r}"
    assert "sha256" in err.lower() or "hash" in err.lower(), err


def test_corrupted_other_version_does_not_block_serving(tmp_path, artifact_copy):
    _flip_byte(artifact_copy / "lane-keeping" / "v0.1.0" / "model.pt")
    srv = Server(tmp_path / "run", artifact_dir=artifact_copy)
    try:
        assert srv.get("/healthz").json()["version"] == "0.2.0"
        srv.assert_healthy()
    finally:
        srv.assert_stops_cleanly()


def test_missing_model_directory_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, err = run_server_expect_exit(tmp_path / "run", artifact_dir=empty)
    assert rc != 0
    assert str(empty) in err, f"stderr={err!r}\nstdout={out!r}"
    assert "no model" in err.lower() or "not found" in err.lower(), err


def test_nonexistent_artifact_dir_refused(tmp_path):
    missing = tmp_path / "does-not-exist"
    rc, out, err = run_server_expect_exit(tmp_path / "run", artifact_dir=missing)
    assert rc != 0
    assert str(missing) in err, f"stderr={err!r}\nstdout={out!r}"


def test_sigint_exits_zero(tmp_path):
    import signal
    srv = Server(tmp_path)
    srv.assert_healthy()
    srv.proc.send_signal(signal.SIGINT)
    assert srv.proc.wait(timeout=20) == 0, srv.stderr()


def test_model_without_log_std_serves_only_deterministic(tmp_path):
    import yaml
    root = tmp_path / "artifacts"
    shutil.copytree(MODEL_DIR / "v0.2.0", root / "lane-keeping" / "v0.2.0")
    card_path = root / "lane-keeping" / "v0.2.0" / "model_card.yaml"
    card = yaml.safe_load(card_path.read_text())
    del card["output"]["log_std"]
    card_path.write_text(yaml.safe_dump(card))
    srv = Server(tmp_path / "run", artifact_dir=root)
    try:
        assert srv.get("/metadata").json()["stochastic"] is False
        srv.predict_ok([fixed_observation()])
        r = srv.predict([fixed_observation()], deterministic=False, seed=3)
        assert r.status == 422, r
        assert "deterministic" in [e["field"] for e in r.json()["details"]["validation_errors"]]
        srv.assert_healthy()
    finally:
        srv.assert_stops_cleanly()


def test_sigterm_during_traffic_exits_zero(tmp_path):
    import threading
    srv = Server(tmp_path)
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                srv.predict([fixed_observation()] * 50)
            except Exception:  # refused or cut off once the server stops: expected here
                pass

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    try:
        srv.assert_stops_cleanly()
    finally:
        stop.set()
        for t in threads:
            t.join()

