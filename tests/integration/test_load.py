"""Concurrency, admission control (queue full -> 503) and deadlines (-> 504)."""

import http.client
import json
import threading

import pytest

from conftest import (FORMATS, Server, actions_close, fixed_observation, random_observations,
                      start_or_skip)

THREADS = 16
REQUESTS_PER_THREAD = 50


class Client:
    """A keep-alive connection that reconnects when the server closes it."""

    def __init__(self, port, timeout=60):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def post(self, path, payload, headers=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=self.timeout)
            try:
                self.conn.request("POST", path, body=payload,
                                  headers={"Content-Type": "application/json", **(headers or {})})
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self.close()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection closed by the server between requests; retry once on
                # a new one. A second failure is a real error.
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run_threads(count, target):
    errors = []

    def wrapped(i):
        try:
            target(i)
        except BaseException as e:  # collected and re-raised on the main thread
            errors.append(e)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="module", params=FORMATS)
def batching_server(request, tmp_path_factory):
    srv = start_or_skip(tmp_path_factory.mktemp(f"batching-{request.param}"), fmt=request.param,
                        sets=["scheduler.inline_when_idle=false"])
    yield srv
    srv.assert_stops_cleanly()


def _observations_for(thread, request):
    """1 to 3 distinct observations per request, so merged batches must be split correctly."""
    n = 1 + (thread + request) % 3
    return random_observations(n, seed=100_000 + thread * 1000 + request)


def test_concurrent_requests_get_their_own_answers(batching_server):
    srv = batching_server
    # The answer for every observation when sent alone, one request at a time.
    expected = {}
    client = Client(srv.port)
    for t in range(THREADS):
        for r in range(REQUESTS_PER_THREAD):
            for o in _observations_for(t, r):
                key = json.dumps(o, sort_keys=True)
                if key not in expected:
                    status, _, data = client.post("/predict", json.dumps({"observations": [o]}))
                    assert status == 200, data
                    expected[key] = json.loads(data)["actions"][0]
    client.close()
    before = srv.metrics()

    mismatches = []

    def worker(t):
        c = Client(srv.port)
        try:
            for r in range(REQUESTS_PER_THREAD):
                obs = _observations_for(t, r)
                status, headers, data = c.post("/predict", json.dumps({"observations": obs}),
                                               headers={"X-Request-ID": f"t{t}-r{r}"})
                assert status == 200, (status, data[:300])
                assert headers["x-request-id"] == f"t{t}-r{r}"
                actions = json.loads(data)["actions"]
                assert len(actions) == len(obs)
                for o, a in zip(obs, actions):
                    if not actions_close(a, expected[json.dumps(o, sort_keys=True)], srv.format):
                        mismatches.append((t, r, o, a, expected[json.dumps(o, sort_keys=True)]))
        finally:
            c.close()

    run_threads(THREADS, worker)
    assert not mismatches, f"{len(mismatches)} observations answered differently under " \
                           f"concurrency than alone, e.g. {mismatches[:2]}"
    after = srv.metrics()
    requests = THREADS * REQUESTS_PER_THREAD
    assert (after.value("brainstem_requests_total", route="/predict", status=200)
            - before.value("brainstem_requests_total", route="/predict", status=200)) == requests
    assert (after.value("brainstem_batch_requests_sum")
            - before.value("brainstem_batch_requests_sum")) == requests
    srv.assert_healthy()


def test_concurrent_requests_are_merged(batching_server):
    """With inline runs off and 16 clients, the scheduler must merge some requests."""
    srv = batching_server
    payloads = [json.dumps({"observations": [fixed_observation()]})] * REQUESTS_PER_THREAD
    before = srv.metrics()

    def worker(t):
        c = Client(srv.port)
        try:
            for p in payloads:
                status, _, data = c.post("/predict", p)
                assert status == 200, data[:300]
        finally:
            c.close()

    run_threads(THREADS, worker)
    after = srv.metrics()

    def merged_calls(m):
        total = m.value("brainstem_batch_requests_count")
        single = m.value("brainstem_batch_requests_bucket", le="1")
        return total - single

    merged = merged_calls(after) - merged_calls(before)
    calls = (after.value("brainstem_batch_requests_count")
             - before.value("brainstem_batch_requests_count"))
    assert merged > 0, f"no backend call merged two or more requests ({calls} calls for " \
                       f"{THREADS * REQUESTS_PER_THREAD} requests)"
    assert calls < THREADS * REQUESTS_PER_THREAD


def _flood(port, payload, threads, per_thread):
    results = []
    lock = threading.Lock()

    def worker(_):
        c = Client(port)
        try:
            for _ in range(per_thread):
                r = c.post("/predict", payload)
                with lock:
                    results.append(r)
        finally:
            c.close()

    run_threads(threads, worker)
    return results


def test_queue_full_is_503_with_retry_after(tmp_path):
    srv = Server(tmp_path, sets=["scheduler.queue_capacity=1",
                                 "scheduler.inline_when_idle=false"])
    try:
        payload = json.dumps({"observations": random_observations(1000, seed=30)})
        results = _flood(srv.port, payload, threads=12, per_thread=4)
        statuses = sorted({s for s, _, _ in results})
        assert set(statuses) <= {200, 503}, statuses
        rejected = [(h, d) for s, h, d in results if s == 503]
        assert rejected, f"no 503 among {len(results)} concurrent 1000-observation requests " \
                         f"with queue_capacity=1"
        assert any(s == 200 for s, _, _ in results)
        for headers, data in rejected:
            assert headers.get("retry-after"), headers
            assert int(headers["retry-after"]) >= 1
            err = json.loads(data)
            assert err["error"] == "SERVICE_UNAVAILABLE"
            assert err["details"]["request_id"] == headers["x-request-id"]
        m = srv.metrics()
        assert m.value("brainstem_rejected_queue_full_total") == len(rejected)
        assert m.value("brainstem_requests_total", route="/predict", status=503) == len(rejected)
        srv.assert_healthy()
    finally:
        srv.assert_stops_cleanly()


def test_deadline_exceeded_is_504(tmp_path):
    srv = Server(tmp_path, sets=["server.request_timeout_ms=1",
                                 "scheduler.inline_when_idle=false"])
    try:
        payload = json.dumps({"observations": random_observations(1000, seed=31)})
        results = _flood(srv.port, payload, threads=8, per_thread=4)
        statuses = sorted({s for s, _, _ in results})
        assert set(statuses) <= {200, 504}, statuses
        late = [(h, d) for s, h, d in results if s == 504]
        assert late, f"no 504 among {len(results)} concurrent 1000-observation requests " \
                     f"with a 1 ms deadline"
        for headers, data in late:
            err = json.loads(data)
            assert err["error"] == "DEADLINE_EXCEEDED"
            assert err["details"]["request_id"] == headers["x-request-id"]
            assert headers.get("x-process-time") is not None
        m = srv.metrics()
        assert m.value("brainstem_requests_total", route="/predict", status=504) == len(late)
        # The server keeps serving: a small request still fits in its 1 ms most of the time.
        ok = sum(srv.predict([fixed_observation()]).status == 200 for _ in range(20))
        assert ok > 0
    finally:
        srv.assert_stops_cleanly()
