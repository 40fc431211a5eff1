"""GET endpoints: /healthz, /metadata, /versions, /openapi.json, /metrics."""

import datetime
import json

import yaml

from conftest import ACTION_BOUNDS, MODEL_DIR, fixed_observation, random_observations


def _card(version_dir):
    return yaml.safe_load((MODEL_DIR / version_dir / "model_card.yaml").read_text())


def test_healthz(server):
    r = server.get("/healthz")
    assert r.status == 200, r
    assert r.header("content-type").startswith("application/json")
    body = r.json()
    assert body["status"] == "ok"
    assert body["version"] == "0.2.0"
    assert isinstance(body["git"], str) and body["git"]
    assert body["device"] == "cpu"
    ts = body["timestamp"]
    parsed = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    now = datetime.datetime.now(datetime.timezone.utc)
    assert parsed.tzinfo is not None, f"timestamp without zone: {ts}"
    assert abs((now - parsed).total_seconds()) < 300, f"timestamp {ts} far from now {now}"


def test_head_healthz_has_no_body(server):
    r = server.request("HEAD", "/healthz")
    assert r.status == 200, r
    assert r.body == b""


def test_metadata(server):
    r = server.get("/metadata")
    assert r.status == 200, r
    m = r.json()
    assert m["modelName"] == "lane-keeping"
    assert m["version"] == "0.2.0"
    assert m["device"] == "cpu"
    assert m["inputShape"] == [10]
    assert m["format"] == server.format
    assert set(m["actionSpace"]) == set(ACTION_BOUNDS)
    for name, (low, high) in ACTION_BOUNDS.items():
        assert m["actionSpace"][name] == {"low": low, "high": high}, name
    assert [(i["name"], i["size"]) for i in m["inputs"]] == [
        ("speed", 1), ("steering", 1), ("sensors", 8)]
    assert m["stochastic"] is True


def test_versions(server):
    r = server.get("/versions")
    assert r.status == 200, r
    v = r.json()
    assert v["model"] == "lane-keeping"
    assert v["current"] == "0.2.0"
    by_version = {e["version"]: e for e in v["versions"]}
    assert set(by_version) == {"0.1.0", "0.2.0", "0.3.0-rc.1"}
    assert by_version["0.1.0"]["stable"] is True
    assert by_version["0.2.0"]["stable"] is True
    assert by_version["0.3.0-rc.1"]["stable"] is False
    assert [e["version"] for e in v["versions"] if e["current"]] == ["0.2.0"]
    for dirname, entry in (("v0.1.0", by_version["0.1.0"]), ("v0.2.0", by_version["0.2.0"]),
                           ("v0.3.0-rc.1", by_version["0.3.0-rc.1"])):
        assert entry["path"] == dirname
        card = entry["card"]
        expected = _card(dirname)
        assert card["name"] == "lane-keeping"
        assert card["version"] == expected["version"]
        assert card["artifact_hashes"] == expected["artifact_hashes"]
        assert card["formats"] == expected["files"]
        assert [a["name"] for a in card["actions"]] == ["throttle", "brake", "steer"]
        assert card["stochastic"] is ("log_std" in expected["output"])


def test_openapi(server):
    r = server.get("/openapi.json")
    assert r.status == 200, r
    doc = json.loads(r.body)
    assert doc["openapi"].startswith("3.")
    for path in ("/predict", "/healthz", "/metadata", "/versions", "/metrics"):
        assert path in doc["paths"], path
    assert "post" in doc["paths"]["/predict"]

    # Every $ref must resolve inside the document.
    def refs(node):
        if isinstance(node, dict):
            for k, val in node.items():
                if k == "$ref":
                    yield val
                else:
                    yield from refs(val)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    for ref in refs(doc):
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            assert part in node, f"unresolved $ref {ref}"
            node = node[part]


REQUIRED_METRICS = (
    "brainstem_requests_total",
    "brainstem_request_duration_seconds_bucket",
    "brainstem_request_duration_seconds_count",
    "brainstem_batch_observations_bucket",
    "brainstem_batch_observations_sum",
    "process_resident_memory_bytes",
    "brainstem_startup_seconds",
)


def test_metrics_format_and_content(server):
    r = server.get("/metrics")
    assert r.status == 200, r
    assert r.header("content-type").startswith("text/plain")
    m = server.metrics()
    for name in REQUIRED_METRICS:
        assert name in m.names(), f"{name} missing from /metrics"
    assert m.value("process_resident_memory_bytes") > 1e6
    startup = m.value("brainstem_startup_seconds")
    assert 0 < startup < 60
    # Histogram buckets are cumulative and end with +Inf == _count.
    buckets = m.find("brainstem_request_duration_seconds_bucket")
    values = [v for _, v in buckets]
    assert values == sorted(values)
    assert buckets[-1][0]["le"] == "+Inf"
    assert values[-1] == m.value("brainstem_request_duration_seconds_count")


def test_metrics_count_requests(server):
    before = server.metrics()
    obs = random_observations(8, seed=7)
    batches = [obs[:1], obs[1:6], obs[6:8]]
    for b in batches:
        server.predict_ok(b)
    bad = server.post("/predict", {"observations": []})
    assert bad.status == 422
    after = server.metrics()

    def req(m, status):
        return m.value("brainstem_requests_total", default=0.0, route="/predict",
                       status=status)

    assert req(after, 200) - req(before, 200) == 3
    assert req(after, 422) - req(before, 422) == 1
    assert (after.value("brainstem_request_duration_seconds_count")
            - before.value("brainstem_request_duration_seconds_count")) == 4
    assert (after.value("brainstem_batch_observations_sum")
            - before.value("brainstem_batch_observations_sum")) == 8
    assert (after.value("brainstem_observations_total")
            - before.value("brainstem_observations_total")) == 8
    assert (after.value("brainstem_requests_total", route="/metrics", status=200)
            - before.value("brainstem_requests_total", route="/metrics", status=200)) == 1
    server.assert_healthy()


def test_metrics_labels_name_model(server):
    m = server.metrics()
    labels, _ = m.find("brainstem_batch_observations_count")[0]
    assert labels.get("model") == "lane-keeping"
    assert labels.get("version") == "0.2.0"


def test_warmup(server):
    r = server.post("/warmup", b"")
    assert r.status == 200, r
    assert r.json()["status"] == "ok"
    server.assert_healthy()


def test_fixed_observation_is_valid(server):
    # Guards the helper every other test relies on.
    body = server.predict_ok([fixed_observation()])
    assert body["version"] == "0.2.0"
