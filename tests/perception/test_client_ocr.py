"""The client libraries' OCR calls end to end: a real Xvfb screen captured by `brainstem
capture`, read through the Python package (ctypes over libbrainstem_client.so) over shm and over
http, and through `brainstem capture --request find|region`. Skipped when Xvfb/xterm/ImageMagick
are missing."""
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

import ocr_env as E

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "client", "python"))
import brainstem_client as bc  # noqa: E402

BIN = E.BIN
pytestmark = pytest.mark.skipif(not E.have_tools(), reason=E.MISSING_TOOLS)


@pytest.fixture(scope="module")
def env():
    wd = tempfile.mkdtemp(prefix="bs-ocr-client-")
    screen = E.Screen(f":{80 + os.getpid() % 9}", 1280, 960, wd)
    screen.start()
    server = E.Server(BIN, wd)
    server.shm_name = f"ocrclient{os.getpid()}"
    server.start()
    raw, _ = E.capture_raw(BIN, screen.display, wd)
    yield screen, server, raw
    server.stop()
    screen.stop()


@pytest.fixture(scope="module", params=["shm", "http"])
def client(env, request):
    _, server, _ = env
    url = server.shm_url if request.param == "shm" else f"http://127.0.0.1:{server.port}"
    with bc.Client(url) as c:
        yield c


def contains(box, point):
    x, y, w, h = box
    return x <= point[0] <= x + w and y <= point[1] <= y + h


def test_text_find_and_region_agree(env, client):
    screen, _, raw = env
    w, h = screen.width, screen.height
    text = client.ocr_text(raw, w, h)["text"]
    assert "Settings Save Cancel 12345" in text

    found = client.find_text(raw, w, h, "Settings")
    assert found["matches"], found
    best = found["matches"][0]
    assert "Settings" in best["text"]
    assert contains(best["box"], best["center"])

    x, y, bw, bh = best["box"]
    region = client.read_region(raw, w, h, (x - 2, y - 2, bw + 4, bh + 4))
    assert "Settings" in region["text"]
    assert "invoice" not in region["text"]


def test_find_query_with_spaces_and_symbols(env, client):
    screen, _, raw = env
    found = client.find_text(raw, screen.width, screen.height, "1289.50 EUR")
    assert found["matches"], found
    assert "1289.50" in found["matches"][0]["text"]


def test_bad_queries_are_refused_and_name_the_field(env, client):
    screen, _, raw = env
    w, h = screen.width, screen.height
    with pytest.raises(ValueError, match="query is required"):
        client.submit_frame(raw, w, h, request="find")
    with pytest.raises(ValueError, match="request must be one of"):
        client.submit_frame(raw, w, h, request="translate")
    with pytest.raises(bc.InvalidArgument, match="region"):
        client.submit_frame(raw, w, h, request="region", query="10,20,abc")
    if client.transport == "shm":
        with pytest.raises(bc.InvalidArgument, match="query is 5000 bytes"):
            client.submit_frame(raw, w, h, request="find", query="x" * 5000)
    else:
        with pytest.raises(bc.Unsupported, match="verify"):
            client.submit_frame(raw, w, h, request="verify")
    # The connection still serves after each refusal.
    assert "Settings" in client.ocr_text(raw, w, h)["text"]


def test_zero_copy_buffer_takes_a_query(env):
    screen, server, raw = env
    with bc.Client(server.shm_url) as c:
        with c.frame_buffer() as buf:
            buf.memoryview()[:len(raw)] = raw
            answer = buf.submit(screen.width, screen.height, request="find", query="Cancel")
    matches = json.loads(answer["result"])["matches"]
    assert matches and "Cancel" in matches[0]["text"]


def test_capture_command_find_and_region(env):
    screen, server, _ = env
    r = subprocess.run([BIN, "capture", "--display", screen.display, "--once", "--url",
                        server.shm_url, "--request", "find", "--query", "Settings"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    answer = json.loads(next(l for l in r.stdout.splitlines() if l.startswith("{")))
    assert answer["matches"] and "Settings" in answer["matches"][0]["text"]

    r = subprocess.run([BIN, "capture", "--display", screen.display, "--once", "--url",
                        server.shm_url, "--request", "region"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "needs --query" in r.stderr


def test_capture_keeps_going_through_a_server_restart(env):
    """`brainstem capture --rate` over shm with MIT-SHM: the server restarts mid-stream; capture
    reconnects, hands the X server the new region and finishes every frame."""
    screen, _, _ = env
    wd = tempfile.mkdtemp(prefix="bs-ocr-restart-")
    server = E.Server(BIN, wd)
    server.shm_name = f"ocrrestart{os.getpid()}"
    server.start()
    try:
        proc = subprocess.Popen([BIN, "capture", "--display", screen.display, "--rate", "10",
                                 "--frames", "30", "--quiet", "--request", "verify",
                                 "--url", server.shm_url],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        server.stop()
        server.start()
        _, err = proc.communicate(timeout=120)
    finally:
        server.stop()
    assert proc.returncode == 0, err
    assert "continuing with its new region" in err
    stats = json.loads(err.strip().splitlines()[-1])
    assert stats["frames"] == 30 and stats["zero_copy"] is True, stats
