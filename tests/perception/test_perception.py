"""End to end: Xvfb with known text -> `brainstem capture` (MIT-SHM) -> the real server's OCR
over HTTP and shared memory. Skipped when Xvfb/xterm/ImageMagick are missing."""
import json
import os
import struct
import subprocess
import tempfile
import time
import zlib

import pytest

import ocr_env as E

BIN = E.BIN
pytestmark = pytest.mark.skipif(not E.have_tools(), reason=E.MISSING_TOOLS)


@pytest.fixture(scope="module")
def env():
    wd = tempfile.mkdtemp(prefix="bs-ocr-")
    screen = E.Screen(f":{90 + os.getpid() % 9}", 1280, 960, wd)
    screen.start()
    server = E.Server(BIN, wd)
    server.start()
    yield screen, server, wd
    server.stop()
    screen.stop()


def capture(screen, server, wd):
    raw, stats = E.capture_raw(BIN, screen.display, wd)
    assert stats["mit_shm"] is True
    assert len(raw) == screen.width * screen.height * 4
    return raw


def lines_of(result):
    return [l["text"] for b in result["blocks"] for l in b["lines"]]


def test_capture_ocr_character_error_rate(env):
    screen, server, wd = env
    raw = capture(screen, server, wd)
    status, result = server.ocr_raw(raw, screen.width, screen.height, query="?stream=cer")
    assert status == 200, result
    cer, per_line = E.character_error_rate(screen.expected_lines(), lines_of(result))
    assert cer <= 0.03, (cer, {k: v for k, v in per_line.items() if v})
    # Every word carries a box and a confidence.
    words = [w for b in result["blocks"] for l in b["lines"] for w in l["words"]]
    assert words and all(len(w["box"]) == 4 and 0 <= w["confidence"] <= 100 for w in words)
    # Tesseract's OpenMP regions ran in the plugin's own serial versions, not in libgomp
    # (tesseract_engine.cc): the count moves only when those are the ones bound.
    status, body = server.request("GET", "/v1/ocr/info")
    assert status == 200 and json.loads(body)["openmp_serial_regions"] > 0


def test_find_returns_box_containing_word(env):
    screen, server, wd = env
    raw = capture(screen, server, wd)
    for word in ("Cancel", "Place order", "Back to cart", "1289.50"):
        status, r = server.ocr_raw(raw, screen.width, screen.height, path="/v1/ocr/find",
                                   query="?stream=find&query=" + word.replace(" ", "+"))
        assert status == 200, r
        assert r["matches"], (word, r)
        best = r["matches"][0]
        assert best["kind"] == "exact" and best["text"] == word
        x, y, w, h = best["box"]
        cx, cy = best["center"]
        assert x <= cx <= x + w and y <= cy <= y + h
        # The box holds the word: a crop of it read alone gives the word back.
        assert w >= len(word) * 4 and 6 <= h <= 40
    # Case-insensitive and fuzzy rank below exact; regex works.
    status, r = server.ocr_raw(raw, screen.width, screen.height, path="/v1/ocr/find",
                               query="?stream=find&query=setings")
    assert status == 200 and r["matches"] and r["matches"][0]["kind"] == "fuzzy"
    status, r = server.ocr_raw(raw, screen.width, screen.height, path="/v1/ocr/find",
                               query="?stream=find&regex=1&query=%5B0-9%5D%2B%5C.%5B0-9%5D%2B")
    assert status == 200 and r["matches"][0]["text"] == "1289.50"


def test_identical_frame_from_cache_and_changed_line_reread(env):
    screen, server, wd = env
    raw = capture(screen, server, wd)
    status, first = server.ocr_raw(raw, screen.width, screen.height, query="?stream=chg")
    assert status == 200
    before = server.metrics()
    status, again = server.ocr_raw(raw, screen.width, screen.height, query="?stream=chg")
    assert status == 200 and again["cache"]["hit"] is True
    assert again["text"] == first["text"]
    after = server.metrics()
    assert after["brainstem_ocr_cache_hits_total"] == before["brainstem_ocr_cache_hits_total"] + 1
    # Change one line of one xterm.
    screen.write_lines(13, ["brainstem perception test line", "git push origin feature"])
    time.sleep(0.8)
    raw2 = capture(screen, server, wd)
    status, changed = server.ocr_raw(raw2, screen.width, screen.height, query="?stream=chg")
    assert status == 200
    c = changed["cache"]
    assert c["hit"] is False and c["full_read"] is False
    assert 1 <= c["tiles_changed"] <= 6, c
    assert c["regions"] <= 2 and c["pixels_read"] < 0.05 * screen.width * screen.height, c
    # Only the changed line reaches the engine: the lines above and below, inside the region's
    # padding, come from the cache (docs/perception.md).
    assert c["pieces"] == 1, c
    texts = lines_of(changed)
    assert "git push origin feature" in texts, texts
    assert "git commit -m fix parser bug" not in texts
    assert "The quick brown fox jumps over the lazy dog" in texts  # kept from the cache
    final = server.metrics()
    assert final["brainstem_ocr_tiles_reread_total"] >= after["brainstem_ocr_tiles_reread_total"] + 1


def test_region_query(env):
    screen, server, wd = env
    raw = capture(screen, server, wd)
    status, r = server.ocr_raw(raw, screen.width, screen.height,
                               query="?stream=region&region=640,0,640,400")
    assert status == 200
    assert "Place order" in r["text"] and "Settings" not in r["text"]


def png_bytes(width, height):
    rows = b"".join(b"\x00" + b"\xff" * (width * 3) for _ in range(height))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_bad_inputs_are_refused_and_server_keeps_serving(env):
    screen, server, wd = env
    good = png_bytes(64, 32)
    status, body = server.request("POST", "/v1/ocr", good, {"Content-Type": "image/png"})
    assert status == 200, body
    cases = [
        (good[: len(good) // 2], {"Content-Type": "image/png"}, 422, "PNG"),
        (png_bytes(20000, 1)[:200], {"Content-Type": "image/png"}, 422, "limit"),
        (b"", {"Content-Type": "application/octet-stream", "X-Width": "0", "X-Height": "10"},
         422, "width"),
        (b"\0" * 400, {"Content-Type": "application/octet-stream", "X-Width": "20000",
                       "X-Height": "20000"}, 422, "width"),
        (b"\0" * 400, {"Content-Type": "application/octet-stream", "X-Width": "10",
                       "X-Height": "10", "X-Stride": "20"}, 422, "stride"),
        (b"\0" * 400, {"Content-Type": "application/octet-stream", "X-Width": "10",
                       "X-Height": "10", "X-Stride": "40", "X-Checksum": "0123456789abcdef"},
         422, "checksum"),
        (b"\0" * 400, {"Content-Type": "application/octet-stream", "X-Width": "10",
                       "X-Height": "10", "X-Format": "yuv420"}, 422, "format"),
        (b"GIF89a", {"Content-Type": "image/gif"}, 415, "Content-Type"),
    ]
    for body, headers, want, needle in cases:
        status, answer = server.request("POST", "/v1/ocr", body, headers)
        assert status == want, (headers, status, answer)
        assert needle.lower() in json.loads(answer)["message"].lower(), answer
    status, answer = server.request("POST", "/v1/ocr/find", good, {"Content-Type": "image/png"})
    assert status == 422 and b"query" in answer
    assert server.metrics()["brainstem_ocr_bad_inputs_total"] >= len(cases)
    status, body = server.request("POST", "/v1/ocr", good, {"Content-Type": "image/png"})
    assert status == 200
    status, body = server.request("GET", "/v1/ocr/info")
    info = json.loads(body)
    assert status == 200 and info["language"] == "eng" and info["omp_thread_limit"] == "1"


def test_shm_frame_request_ocr(env):
    screen, server, wd = env
    r = subprocess.run([BIN, "capture", "--display", screen.display, "--frames", "2",
                        "--url", server.shm_url], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    answers = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    assert len(answers) == 2
    assert "Settings Save Cancel 12345" in answers[0]["text"]
    assert answers[0]["truncated"] is False
    assert answers[1]["cache_hit"] is True
    # With MIT-SHM over shm the X server wrote each frame straight into the frame slot.
    stats = json.loads(r.stderr.strip().splitlines()[-1])
    assert stats["zero_copy"] is True, stats
