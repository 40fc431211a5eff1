"""POST /predict: shapes, bounds, batching invariance, determinism, sampling, request ids."""

import math

import pytest

from conftest import (FORMATS, actions_close, assert_actions_in_bounds, fixed_observation,
                      random_observations, start_or_skip)


def test_predict_batch_1(server):
    body = server.predict_ok([fixed_observation()])
    assert len(body["actions"]) == 1
    assert_actions_in_bounds(body["actions"])
    assert body["version"] == "0.2.0"
    assert body["deterministic"] is True
    assert isinstance(body["timingMs"], (int, float)) and body["timingMs"] >= 0
    assert "seed" not in body


def test_predict_batch_32(server):
    obs = random_observations(32, seed=1)
    body = server.predict_ok(obs)
    assert len(body["actions"]) == 32
    assert_actions_in_bounds(body["actions"])
    # The observations differ, so the policy's actions must too (a server returning one row
    # 32 times would pass the bounds check).
    assert len({a["steer"] for a in body["actions"]}) > 16


def test_predict_extreme_but_valid_inputs(server):
    obs = [
        {"speed": 0, "steering": -1, "sensors": [-1000] * 8},
        {"speed": 200, "steering": 1, "sensors": [1000] * 8},
        {"speed": 0.0, "steering": 0.0, "sensors": [0.0] * 8},
    ]
    body = server.predict_ok(obs)
    assert len(body["actions"]) == 3
    assert_actions_in_bounds(body["actions"])


def test_batch_equals_single_requests(server):
    obs = random_observations(32, seed=2)
    batched = server.predict_ok(obs)["actions"]
    singles = [server.predict_ok([o])["actions"][0] for o in obs]
    mismatches = [(i, batched[i], singles[i]) for i in range(len(obs))
                  if not actions_close(batched[i], singles[i], server.format)]
    assert not mismatches, f"{len(mismatches)} of 32 rows differ between batch and single " \
                           f"requests, e.g. {mismatches[:3]}"


def test_order_of_observations_is_kept(server):
    # Row order only; bit-exactness across batch layouts is test_batch_equals_single_requests.
    obs = random_observations(10, seed=3)
    forward = server.predict_ok(obs)["actions"]
    backward = server.predict_ok(obs[::-1])["actions"][::-1]
    for i, (f, b) in enumerate(zip(forward, backward)):
        for k in f:
            assert abs(f[k] - b[k]) <= 1e-5, (i, k, f[k], b[k])
    # The rows are different enough that a swap would be caught by the tolerance above.
    steers = sorted(a["steer"] for a in forward)
    assert min(b - a for a, b in zip(steers, steers[1:])) > 1e-4


def test_deterministic_is_repeatable(server):
    obs = random_observations(5, seed=4)
    first = server.predict_ok(obs, deterministic=True)
    second = server.predict_ok(obs, deterministic=True)
    default = server.predict_ok(obs)
    assert first["actions"] == second["actions"] == default["actions"]
    assert first["deterministic"] is True


def test_stochastic_same_seed_same_actions(server):
    obs = random_observations(5, seed=5)
    a = server.predict_ok(obs, deterministic=False, seed=1234)
    b = server.predict_ok(obs, deterministic=False, seed=1234)
    assert a["deterministic"] is False
    assert a["seed"] == 1234
    assert a["actions"] == b["actions"]
    assert_actions_in_bounds(a["actions"])


def test_stochastic_different_seeds_differ(server):
    obs = random_observations(5, seed=6)
    a = server.predict_ok(obs, deterministic=False, seed=1)
    b = server.predict_ok(obs, deterministic=False, seed=2)
    mean = server.predict_ok(obs, deterministic=True)
    assert a["actions"] != b["actions"]
    assert a["actions"] != mean["actions"]
    # Noise is exp(log_std) * N(0,1) with log_std <= -3.17: samples stay near the mean.
    for s, m in zip(a["actions"], mean["actions"]):
        for k in s:
            assert abs(s[k] - m[k]) < 0.5, (k, s[k], m[k])


def test_stochastic_without_seed_reports_a_reproducible_seed(server):
    obs = random_observations(3, seed=8)
    a = server.predict_ok(obs, deterministic=False)
    assert isinstance(a["seed"], int) and a["seed"] >= 0
    again = server.predict_ok(obs, deterministic=False, seed=a["seed"])
    assert again["actions"] == a["actions"]
    other = server.predict_ok(obs, deterministic=False)
    assert other["seed"] != a["seed"]


def test_version_field_matching_is_accepted(server):
    body = server.predict_ok([fixed_observation()], version="0.2.0")
    assert body["version"] == "0.2.0"
    body = server.predict_ok([fixed_observation()], version="v0.2.0")
    assert body["version"] == "0.2.0"


def test_version_field_unknown_is_404(server):
    r = server.predict([fixed_observation()], version="9.9.9")
    assert r.status == 404, r
    err = r.json()
    assert err["error"] == "NOT_FOUND"
    assert "9.9.9" in err["message"]
    server.assert_healthy()


def _assert_tracing_headers(r):
    rid = r.header("x-request-id")
    assert rid, f"no X-Request-ID on {r.status}: {r.headers}"
    pt = r.header("x-process-time")
    assert pt is not None, f"no X-Process-Time on {r.status}: {r.headers}"
    seconds = float(pt)
    assert math.isfinite(seconds) and 0 <= seconds < 60, pt
    return rid


@pytest.mark.parametrize("method,path,body,status", [
    ("POST", "/predict", {"observations": [fixed_observation()]}, 200),
    ("POST", "/predict", {"observations": []}, 422),
    ("POST", "/predict", "{not json", 422),
    ("POST", "/predict", {"observations": [fixed_observation()], "version": "9.9.9"}, 404),
    ("GET", "/predict", None, 405),
    ("GET", "/no-such-route", None, 404),
    ("GET", "/healthz", None, 200),
    ("GET", "/metadata", None, 200),
    ("GET", "/versions", None, 200),
    ("GET", "/metrics", None, 200),
    ("GET", "/openapi.json", None, 200),
    ("OPTIONS", "/predict", None, 204),
])
def test_tracing_headers_on_every_response(server, method, path, body, status):
    r = server.request(method, path, body=body)
    assert r.status == status, r
    _assert_tracing_headers(r)
    if status >= 400:
        err = r.json()
        assert err["details"]["request_id"] == r.header("x-request-id")
        assert isinstance(err["message"], str) and err["message"]
        assert "timestamp" in err


def test_generated_request_ids_are_unique(server):
    ids = {server.get("/healthz").header("x-request-id") for _ in range(20)}
    assert len(ids) == 20


def test_client_request_id_is_echoed(server):
    rid = "itest-1234-abcd"
    r = server.request("POST", "/predict", body={"observations": [fixed_observation()]},
                       headers={"X-Request-ID": rid})
    assert r.status == 200, r
    assert r.header("x-request-id") == rid


def test_client_request_id_in_error_details(server):
    rid = "itest-error-5678"
    r = server.request("POST", "/predict", body={"observations": [{"speed": 500}]},
                       headers={"X-Request-ID": rid})
    assert r.status == 422, r
    assert r.header("x-request-id") == rid
    assert r.json()["details"]["request_id"] == rid
    r = server.request("GET", "/nope", headers={"X-Request-ID": rid})
    assert r.status == 404
    assert r.json()["details"]["request_id"] == rid
    server.assert_healthy()


def test_keep_alive_connection_serves_many_requests(server):
    import http.client
    import json
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        obs = random_observations(20, seed=9)
        expected = [server.predict_ok([o])["actions"][0] for o in obs]
        got = []
        for o in obs:
            conn.request("POST", "/predict", body=json.dumps({"observations": [o]}),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 200
            got.append(json.loads(resp.read())["actions"][0])
        assert got == expected
    finally:
        conn.close()


@pytest.fixture(scope="module")
def both_servers(server_pool):
    return {fmt: server_pool.get(fmt) for fmt in FORMATS}


def test_torchscript_and_onnx_agree(both_servers):
    obs = random_observations(64, seed=10)
    obs += [{"speed": 0, "steering": -1, "sensors": [-1000] * 8},
            {"speed": 200, "steering": 1, "sensors": [1000] * 8}]
    ts = both_servers["torchscript"].predict_ok(obs)["actions"]
    ox = both_servers["onnx"].predict_ok(obs)["actions"]
    worst = max(abs(a[k] - b[k]) for a, b in zip(ts, ox) for k in a)
    assert worst <= 1e-4, f"largest torchscript/onnx difference {worst}"


def test_torchscript_and_onnx_agree_when_sampling(both_servers):
    obs = random_observations(16, seed=11)
    ts = both_servers["torchscript"].predict_ok(obs, deterministic=False, seed=99)["actions"]
    ox = both_servers["onnx"].predict_ok(obs, deterministic=False, seed=99)["actions"]
    worst = max(abs(a[k] - b[k]) for a, b in zip(ts, ox) for k in a)
    assert worst <= 1e-4, f"largest torchscript/onnx difference {worst}"


def test_reported_seed_reproduces_actions_for_any_uint64(server):
    # The parser accepts any unsigned 64-bit seed; the seed the response reports must be the
    # one that reproduces the sample (clients log it to replay an episode).
    obs = random_observations(4, seed=12)
    for seed in (0, 1, 2**32 + 5, 2**63 - 1, 2**63, 2**64 - 1):
        first = server.predict_ok(obs, deterministic=False, seed=seed)
        assert first["seed"] == seed, f"sent seed {seed}, response reports {first['seed']}"
        again = server.predict_ok(obs, deterministic=False, seed=first["seed"])
        assert again["actions"] == first["actions"], seed


def test_seed_is_ignored_when_deterministic(server):
    obs = random_observations(3, seed=13)
    a = server.predict_ok(obs, deterministic=True, seed=5)
    b = server.predict_ok(obs, deterministic=True)
    assert a["actions"] == b["actions"]
    assert "seed" not in a


def test_unusable_client_request_id_is_replaced(server):
    for bad in ("has space", "x" * 200):
        r = server.request("GET", "/healthz", headers={"X-Request-ID": bad})
        assert r.status == 200
        rid = r.header("x-request-id")
        assert rid and rid != bad and " " not in rid and len(rid) <= 128, rid


def test_torchscript_unmerged_answers_are_bit_exact(tmp_path):
    # With merging off (max_batch_size 1), concurrent single-observation requests each run
    # alone, so even LibTorch answers exactly as for a lone request.
    import threading
    srv = start_or_skip(tmp_path, fmt="torchscript",
                        sets=("scheduler.max_batch_size=1", "scheduler.inline_when_idle=false"))
    try:
        obs = random_observations(24, seed=21)
        alone = [srv.predict_ok([o])["actions"][0] for o in obs]
        results = [None] * len(obs)

        def worker(i):
            results[i] = srv.predict_ok([obs[i]])["actions"][0]

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(obs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == alone
    finally:
        srv.stop()
