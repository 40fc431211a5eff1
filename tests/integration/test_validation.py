"""Bad /predict bodies: exact status, error code, and the field named in validation_errors.

After every bad input the same server must still answer a good /predict.
"""

import json

import pytest

from conftest import fixed_observation


def obs(**changes):
    o = fixed_observation()
    for k, v in changes.items():
        if v is _DROP:
            del o[k]
        else:
            o[k] = v
    return o


_DROP = object()


def body(*observations, **top):
    b = {"observations": list(observations)}
    b.update(top)
    return json.dumps(b)


def sensors_with(index, value):
    s = list(fixed_observation()["sensors"])
    s[index] = value
    return s


GOOD = fixed_observation()

# (id, raw body, field that details.validation_errors must name)
CASES = [
    ("malformed_truncated", '{"observations": [', "body"),
    ("malformed_garbage", "this is not json", "body"),
    ("malformed_trailing_comma",
     '{"observations": [{"speed": 1, "steering": 0, "sensors": [0,0,0,0,0,0,0,0],}]}', "body"),
    ("malformed_single_quotes", "{'observations': []}", "body"),
    ("empty_body", "", "body"),
    ("body_is_array", json.dumps([GOOD]), "body"),
    ("body_is_string", json.dumps("observations"), "body"),
    ("body_is_number", "42", "body"),
    ("body_is_null", "null", "body"),
    ("speed_string", body(obs(speed="fast")), "observations[0].speed"),
    ("speed_null", body(obs(speed=None)), "observations[0].speed"),
    ("speed_bool", body(obs(speed=True)), "observations[0].speed"),
    ("speed_array", body(obs(speed=[1.0])), "observations[0].speed"),
    ("steering_string", body(obs(steering="left")), "observations[0].steering"),
    ("sensors_not_array", body(obs(sensors=3.0)), "observations[0].sensors"),
    ("sensor_string", body(obs(sensors=sensors_with(2, "x"))), "observations[0].sensors[2]"),
    ("missing_sensors", body(obs(sensors=_DROP)), "observations[0].sensors"),
    ("missing_speed", body(obs(speed=_DROP)), "observations[0].speed"),
    ("missing_steering", body(obs(steering=_DROP)), "observations[0].steering"),
    ("missing_observations", json.dumps({"deterministic": True}), "observations"),
    ("speed_too_high", body(obs(speed=250)), "observations[0].speed"),
    ("speed_negative", body(obs(speed=-1)), "observations[0].speed"),
    ("steering_too_high", body(obs(steering=1.5)), "observations[0].steering"),
    ("steering_too_low", body(obs(steering=-1.01)), "observations[0].steering"),
    ("sensor_too_large", body(obs(sensors=sensors_with(3, 1e6))), "observations[0].sensors[3]"),
    ("sensor_too_negative", body(obs(sensors=sensors_with(0, -1e6))),
     "observations[0].sensors[0]"),
    # Python's json.dumps writes NaN / Infinity literals (not JSON); the server must refuse them.
    ("speed_nan", body(obs(speed=float("nan"))), "observations[0].speed"),
    ("speed_infinity", body(obs(speed=float("inf"))), "observations[0].speed"),
    ("sensor_nan", body(obs(sensors=sensors_with(5, float("nan")))),
     "observations[0].sensors[5]"),
    ("sensor_neg_infinity", body(obs(sensors=sensors_with(1, float("-inf")))),
     "observations[0].sensors[1]"),
    ("speed_1e999",
     '{"observations": [{"speed": 1e999, "steering": 0, "sensors": [0,0,0,0,0,0,0,0]}]}',
     "observations[0].speed"),
    ("steering_neg_1e999",
     '{"observations": [{"speed": 1, "steering": -1e999, "sensors": [0,0,0,0,0,0,0,0]}]}',
     "observations[0].steering"),
    ("seven_sensors", body(obs(sensors=[0.0] * 7)), "observations[0].sensors"),
    ("nine_sensors", body(obs(sensors=[0.0] * 9)), "observations[0].sensors"),
    ("zero_sensors", body(obs(sensors=[])), "observations[0].sensors"),
    ("empty_observations", body(), "observations"),
    ("observations_not_array", json.dumps({"observations": GOOD}), "observations"),
    ("observations_null", json.dumps({"observations": None}), "observations"),
    ("observation_not_object", json.dumps({"observations": [GOOD, 5]}), "observations[1]"),
    ("too_many_observations", body(*([GOOD] * 1001)), "observations"),
    ("bad_row_in_middle", body(*([GOOD] * 5 + [obs(speed=999)] + [GOOD] * 4)),
     "observations[5].speed"),
    ("unknown_top_level_field", body(GOOD, foo=1), "foo"),
    ("unknown_observation_field", body(dict(GOOD, throttle=0.5)), "observations[0].throttle"),
    ("duplicate_observation_field",
     '{"observations": [{"speed": 1, "speed": 2, "steering": 0, "sensors": [0,0,0,0,0,0,0,0]}]}',
     "observations[0].speed"),
    ("deterministic_string", body(GOOD, deterministic="yes"), "deterministic"),
    ("deterministic_number", body(GOOD, deterministic=1), "deterministic"),
    ("deterministic_null", body(GOOD, deterministic=None), "deterministic"),
    ("seed_negative", body(GOOD, deterministic=False, seed=-1), "seed"),
    ("seed_string", body(GOOD, deterministic=False, seed="7"), "seed"),
    ("seed_float", body(GOOD, deterministic=False, seed=1.5), "seed"),
    ("version_number", body(GOOD, version=2), "version"),
]


@pytest.mark.parametrize("raw,field", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_bad_predict_body(server, raw, field):
    r = server.request("POST", "/predict", body=raw.encode(),
                       headers={"Content-Type": "application/json"})
    assert r.status == 422, r
    assert r.header("content-type").startswith("application/json")
    err = r.json()
    assert err["error"] == "VALIDATION_ERROR", err
    assert err["message"], err
    fields = [e["field"] for e in err["details"]["validation_errors"]]
    assert field in fields, f"validation_errors {err['details']['validation_errors']} " \
                            f"do not name {field!r}"
    for e in err["details"]["validation_errors"]:
        assert e["message"], e
    assert err["details"]["request_id"] == r.header("x-request-id")
    server.assert_healthy()


def test_all_problems_reported_at_once(server):
    raw = body(obs(speed=300), obs(steering=5), obs(sensors=[0.0] * 3))
    r = server.request("POST", "/predict", body=raw.encode())
    assert r.status == 422, r
    fields = {e["field"] for e in r.json()["details"]["validation_errors"]}
    assert {"observations[0].speed", "observations[1].steering",
            "observations[2].sensors"} <= fields
    server.assert_healthy()


def test_exactly_1000_observations_accepted(server):
    r = server.request("POST", "/predict", body=body(*([GOOD] * 1000)).encode())
    assert r.status == 200, r
    actions = r.json()["actions"]
    assert len(actions) == 1000
    assert all(a == actions[0] for a in actions)


def test_integer_values_are_accepted(server):
    r = server.request("POST", "/predict",
                       body=body({"speed": 30, "steering": 0, "sensors": [0] * 8}).encode())
    assert r.status == 200, r


def test_deeply_nested_json_is_422(server):
    raw = '{"observations": ' + "[" * 5000 + "]" * 5000 + "}"
    r = server.request("POST", "/predict", body=raw.encode())
    assert r.status == 422, r
    assert r.json()["error"] == "VALIDATION_ERROR"
    server.assert_healthy()


def test_error_list_is_capped_but_complete_enough(server):
    raw = body(*([obs(speed=999)] * 1000))
    r = server.request("POST", "/predict", body=raw.encode())
    assert r.status == 422, r
    errors = r.json()["details"]["validation_errors"]
    assert 1 <= len(errors) <= 100, len(errors)
    assert errors[0]["field"] == "observations[0].speed"
    server.assert_healthy()


def test_escaped_keys_and_whitespace_are_accepted(server):
    raw = ('\n  {"\\u006fbservations" : [ {"speed" : 3e1 , "steering": -0.0,\n'
           ' "sensors": [0, 0, 0, 0, 0, 0, 0, 0E0]} ] }  \n')
    r = server.request("POST", "/predict", body=raw.encode())
    assert r.status == 200, r
    assert len(r.json()["actions"]) == 1
