"""A server whose OCR is off (ocr.enabled false, or a build with BRAINSTEM_WITH_OCR=OFF, where
CI runs this file too): the OCR routes refuse with a message that says how to turn OCR on, and
policy serving is untouched."""
from conftest import fixed_observation, start_or_skip

import pytest


@pytest.fixture(scope="module")
def no_ocr_server(tmp_path_factory):
    wd = tmp_path_factory.mktemp("no-ocr")
    server = start_or_skip(wd, "onnx", sets=("ocr.enabled=false",))
    yield server
    server.assert_stops_cleanly()


@pytest.mark.parametrize("path", ["/v1/ocr", "/v1/ocr/find?query=ok", "/v1/ocr/info"])
def test_ocr_routes_say_ocr_is_off(no_ocr_server, path):
    method = "GET" if path.endswith("/info") else "POST"
    body = None if method == "GET" else b"\x89PNG\r\n\x1a\n"
    r = no_ocr_server.request(method, path, body=body, headers={"Content-Type": "image/png"})
    assert r.status == 503, r.body
    answer = r.json()
    assert answer["error"] == "SERVICE_UNAVAILABLE"
    assert "OCR is not enabled" in answer["message"]
    assert "BRAINSTEM_WITH_OCR" in answer["message"]


def test_policy_serving_is_untouched(no_ocr_server):
    no_ocr_server.predict_ok([fixed_observation()])
    no_ocr_server.assert_healthy()
