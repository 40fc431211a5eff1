"""HTTP-level behaviour: routes, methods, CORS, body limits, and clients that misbehave."""

import json
import socket
import subprocess
import time

import pytest

from conftest import Server, fixed_observation, raw_exchange, random_observations


def _predict_bytes(observations):
    return json.dumps({"observations": observations}).encode()


def _parse_raw_responses(data):
    """Splits raw bytes into a list of (status, headers dict, body) for Content-Length bodies."""
    responses = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head: {data[:200]!r}"
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        responses.append((status, headers, rest[:length]))
        data = rest[length:]
    return responses


# --- routes and methods -------------------------------------------------------------------


def test_unknown_route_is_404(any_server):
    for path in ("/nope", "/predict/extra", "/v2/models", "/"):
        r = any_server.get(path)
        assert r.status == 404, (path, r)
        err = r.json()
        assert err["error"] == "NOT_FOUND"
        assert err["details"]["request_id"] == r.header("x-request-id")
    any_server.assert_healthy()


def test_query_string_is_ignored_for_routing(any_server):
    r = any_server.get("/healthz?verbose=1")
    assert r.status == 200, r


@pytest.mark.parametrize("method,path", [
    ("GET", "/predict"), ("PUT", "/predict"), ("DELETE", "/predict"),
    ("POST", "/healthz"), ("POST", "/metadata"), ("DELETE", "/versions"), ("GET", "/warmup"),
])
def test_wrong_method_is_405(any_server, method, path):
    r = any_server.request(method, path)
    assert r.status == 405, r
    err = r.json()
    assert err["error"] == "METHOD_NOT_ALLOWED"
    allow = r.header("allow")
    assert allow, "405 without an Allow header"
    expected = "POST" if path in ("/predict", "/warmup") else "GET"
    assert expected in allow, allow
    any_server.assert_healthy()


def test_options_preflight_without_cors(any_server):
    r = any_server.request("OPTIONS", "/predict",
                           headers={"Origin": "http://example.com",
                                    "Access-Control-Request-Method": "POST"})
    assert r.status == 204, r
    assert r.body == b""
    assert "POST" in (r.header("allow") or "")
    # CORS is off by default: no browser may read the answer.
    assert r.header("access-control-allow-origin") is None
    r = any_server.request("POST", "/predict",
                           body={"observations": [fixed_observation()]},
                           headers={"Origin": "http://example.com"})
    assert r.status == 200
    assert r.header("access-control-allow-origin") is None
    any_server.assert_healthy()


# --- a server with a small body limit and CORS on -----------------------------------------


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("limited"),
                 sets=["server.max_body_bytes=4096", "server.cors.enabled=true"])
    yield srv
    srv.assert_stops_cleanly()


@pytest.fixture(scope="module")
def cors_list_server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("cors-list"),
                 sets=["server.cors.enabled=true",
                       "server.cors.allow_origins=http://allowed.example"])
    yield srv
    srv.assert_stops_cleanly()


def test_oversized_body_is_413(limited_server):
    big = _predict_bytes([fixed_observation()] * 120)
    assert len(big) > 10_000
    r = limited_server.request("POST", "/predict", body=big,
                               headers={"X-Request-ID": "too-big-1"})
    assert r.status == 413, r
    err = r.json()
    assert err["error"] == "PAYLOAD_TOO_LARGE"
    assert "4096" in err["message"]
    assert r.header("x-request-id")
    assert r.header("x-process-time") is not None
    limited_server.assert_healthy()


def test_oversized_body_via_raw_socket_is_413(limited_server):
    big = _predict_bytes([fixed_observation()] * 120)
    head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(big)}\r\n\r\n").encode()
    s = socket.create_connection(("127.0.0.1", limited_server.port), timeout=10)
    try:
        s.sendall(head)
        try:
            s.sendall(big)
        except OSError:
            pass  # the server may stop reading once it has refused the request
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 413"), data[:200]
    limited_server.assert_healthy()


def test_body_under_limit_is_served(limited_server):
    small = _predict_bytes([fixed_observation()] * 3)
    assert len(small) < 4096
    r = limited_server.request("POST", "/predict", body=small)
    assert r.status == 200, r
    assert len(r.json()["actions"]) == 3


def test_cors_preflight_when_enabled(limited_server):
    r = limited_server.request("OPTIONS", "/predict",
                               headers={"Origin": "http://example.com",
                                        "Access-Control-Request-Method": "POST",
                                        "Access-Control-Request-Headers": "content-type"})
    assert r.status == 204, r
    assert r.header("access-control-allow-origin") in ("*", "http://example.com"), r.headers
    assert "POST" in (r.header("access-control-allow-methods") or "")
    assert "content-type" in (r.header("access-control-allow-headers") or "").lower()
    limited_server.assert_healthy()


def test_cors_headers_on_actual_request(limited_server):
    r = limited_server.request("POST", "/predict",
                               body={"observations": [fixed_observation()]},
                               headers={"Origin": "http://example.com"})
    assert r.status == 200, r
    assert r.header("access-control-allow-origin") in ("*", "http://example.com")
    assert "x-request-id" in (r.header("access-control-expose-headers") or "").lower()
    # Errors too: a browser must be able to read why it failed.
    r = limited_server.request("POST", "/predict", body={"observations": []},
                               headers={"Origin": "http://example.com"})
    assert r.status == 422
    assert r.header("access-control-allow-origin") in ("*", "http://example.com")
    # No Origin, no CORS headers.
    r = limited_server.request("GET", "/healthz")
    assert r.header("access-control-allow-origin") is None


def test_cors_allow_list(cors_list_server):
    r = cors_list_server.request("GET", "/healthz", headers={"Origin": "http://allowed.example"})
    assert r.status == 200
    assert r.header("access-control-allow-origin") == "http://allowed.example"
    r = cors_list_server.request("GET", "/healthz", headers={"Origin": "http://evil.example"})
    assert r.status == 200
    assert r.header("access-control-allow-origin") is None
    r = cors_list_server.request("OPTIONS", "/predict",
                                 headers={"Origin": "http://allowed.example",
                                          "Access-Control-Request-Method": "POST"})
    assert r.status == 204
    assert r.header("access-control-allow-origin") == "http://allowed.example"


# --- clients that misbehave ---------------------------------------------------------------


def test_client_dies_mid_body(any_server):
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", any_server.port), timeout=10)
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n" + b'{"observat')
        s.close()
    time.sleep(0.2)
    any_server.assert_healthy()


def test_client_dies_mid_headers(any_server):
    s = socket.create_connection(("127.0.0.1", any_server.port), timeout=10)
    s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Le")
    s.close()
    any_server.assert_healthy()


def test_client_closes_before_reading_response(any_server):
    payload = _predict_bytes(random_observations(1000, seed=20))
    request = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
    for _ in range(5):
        raw_exchange(any_server.port, request, read=False)
    time.sleep(0.5)
    any_server.assert_healthy()


def test_client_resets_connection(any_server):
    import struct
    payload = _predict_bytes(random_observations(500, seed=21))
    request = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(payload)}"
               f"\r\n\r\n").encode() + payload
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", any_server.port), timeout=10)
        # SO_LINGER with zero timeout: close() sends RST instead of FIN.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sendall(request)
        s.close()
    time.sleep(0.5)
    any_server.assert_healthy()


def test_idle_connections_do_not_block_others(any_server):
    idle = [socket.create_connection(("127.0.0.1", any_server.port), timeout=10)
            for _ in range(20)]
    try:
        idle[0].sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
        any_server.assert_healthy()
    finally:
        for s in idle:
            s.close()


def test_half_closed_client_still_gets_answer(any_server):
    payload = _predict_bytes([fixed_observation()])
    request = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n").encode() + payload
    s = socket.create_connection(("127.0.0.1", any_server.port), timeout=10)
    try:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    (status, headers, body), = _parse_raw_responses(data)
    assert status == 200
    assert len(json.loads(body)["actions"]) == 1


def test_garbage_request_line_is_400(any_server):
    data = raw_exchange(any_server.port, b"HELLO THERE\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400"), data[:200]
    (status, headers, body), = _parse_raw_responses(data)
    assert headers.get("x-request-id")
    assert json.loads(body)["error"] == "BAD_REQUEST"
    any_server.assert_healthy()


def test_pipelined_requests_answered_in_order(any_server):
    obs = random_observations(3, seed=22)
    expected = [any_server.predict_ok([o])["actions"][0] for o in obs]
    data = b""
    for i, o in enumerate(obs):
        payload = _predict_bytes([o])
        close = "Connection: close\r\n" if i == len(obs) - 1 else ""
        data += (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 f"X-Request-ID: pipe-{i}\r\n{close}Content-Length: {len(payload)}"
                 f"\r\n\r\n").encode() + payload
    responses = _parse_raw_responses(raw_exchange(any_server.port, data))
    assert [r[0] for r in responses] == [200, 200, 200]
    assert [r[1]["x-request-id"] for r in responses] == ["pipe-0", "pipe-1", "pipe-2"]
    assert [json.loads(r[2])["actions"][0] for r in responses] == expected


def test_curl_predict(any_server):
    out = subprocess.run(
        ["curl", "-sS", "-i", "-X", "POST", "-H", "Content-Type: application/json",
         "-H", "X-Request-ID: curl-1", "--data-binary",
         json.dumps({"observations": [fixed_observation()]}), any_server.url + "/predict"],
        capture_output=True, timeout=30, check=True).stdout.decode()
    head, _, body = out.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200"), head
    assert "x-request-id: curl-1" in head.lower()
    assert len(json.loads(body)["actions"]) == 1


def test_curl_error_and_status_code(any_server):
    result = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "POST",
         "-H", "Content-Type: application/json", "--data-binary",
         '{"observations": [{"speed": "fast", "steering": 0, "sensors": [0,0,0,0,0,0,0,0]}]}',
         any_server.url + "/predict"],
        capture_output=True, timeout=30, check=True).stdout.decode()
    body, _, code = result.rpartition("\n")
    assert code == "422"
    err = json.loads(body)
    assert err["error"] == "VALIDATION_ERROR"
    assert err["details"]["validation_errors"][0]["field"] == "observations[0].speed"


def test_curl_keep_alive_two_requests(any_server):
    # curl reuses one connection for two URLs on the same host.
    result = subprocess.run(
        ["curl", "-sS", "-v", any_server.url + "/healthz", any_server.url + "/metadata"],
        capture_output=True, timeout=30, check=True)
    assert b"Re-using existing connection" in result.stderr or \
        b"Reusing existing connection" in result.stderr, result.stderr[-500:]
    bodies = result.stdout.decode()
    assert '"status":"ok"' in bodies and '"modelName":"lane-keeping"' in bodies


def test_chunked_request_body(any_server):
    payload = _predict_bytes([fixed_observation()])
    chunks = [payload[:7], payload[7:40], payload[40:]]
    data = b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" \
           b"Content-Type: application/json\r\nConnection: close\r\n\r\n"
    for c in chunks:
        data += f"{len(c):x}\r\n".encode() + c + b"\r\n"
    data += b"0\r\n\r\n"
    (status, headers, body), = _parse_raw_responses(raw_exchange(any_server.port, data))
    assert status == 200, body
    assert json.loads(body)["actions"] == any_server.predict_ok([fixed_observation()])["actions"]


def test_chunked_body_over_limit_is_413(limited_server):
    payload = _predict_bytes([fixed_observation()] * 120)
    data = b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    for i in range(0, len(payload), 1000):
        c = payload[i:i + 1000]
        data += f"{len(c):x}\r\n".encode() + c + b"\r\n"
    data += b"0\r\n\r\n"
    reply = raw_exchange(limited_server.port, data)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    limited_server.assert_healthy()


def test_http_1_0_request(any_server):
    reply = raw_exchange(any_server.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    (status, headers, body), = _parse_raw_responses(reply)
    assert status == 200
    assert json.loads(body)["status"] == "ok"


def test_bad_content_length_is_400(any_server):
    reply = raw_exchange(any_server.port,
                         b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}")
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    any_server.assert_healthy()


def test_unknown_paths_do_not_become_metric_labels(any_server):
    any_server.get("/probe-a1b2c3")
    text = any_server.get("/metrics").body.decode()
    assert "/probe-a1b2c3" not in text
    assert 'route="unknown"' in text
