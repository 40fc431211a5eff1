#!/usr/bin/python3
"""Screen perception benchmark (docs/benchmarks.md, "Screen perception (OCR)").

For each desktop size: Xvfb with the test screen (tests/perception/ocr_env.py) plus dense
xterms full of text; for 1 and 2 OCR workers: (a) unchanged frame, (b) one changed text line,
(c) a full dense frame (a fresh cache; also with the full-width card 1.0.0), CER on the known
lines and on the dense text; (d) a terminal scrolled by 3 lines; capture cost (MIT-SHM vs
GetImage); and the Bytebot-style transport (PNG encode + base64 + HTTP POST) of the same frame
against raw HTTP and shared memory.

  /usr/bin/python3 bench/ocr/run_ocr_bench.py --bin build/brainstem [--json out.json]
"""
import argparse
import base64
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "perception"))
import ocr_env as E  # noqa: E402


def png_encode(raw, width, height, level=6):
    rows = bytearray()
    stride = width * 4
    for y in range(height):
        rows += b"\x00" + raw[y * stride:(y + 1) * stride]
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(bytes(rows), level)) + chunk(b"IEND", b""))


def bgra_to_rgba(raw):
    b = bytearray(raw)
    b[0::4], b[2::4] = raw[2::4], raw[0::4]
    b[3::4] = b"\xff" * (len(raw) // 4)
    return bytes(b)


def p50(v):
    return statistics.median(v) if v else 0.0


def dense_xterms(screen, wd):
    """Fills the lower part of the screen with xterms of prose side by side (a dense frame).
    Returns, per xterm, its x range and the text it shows (the ground truth), and a function
    that scrolls the first xterm by n new lines (keeping its truth up to date)."""
    with open("/usr/share/common-licenses/GPL-3") as f:
        prose = [line.strip() for line in f.read()[:20000].splitlines()]
    y0 = 430
    cols = 2 if screen.width < 1600 else 3
    w = screen.width // cols
    # DejaVu Sans Mono 11 in xterm is a 9x19 px cell (measured from word boxes); 8 px spare for
    # the borders keeps the windows apart and whole on the screen.
    columns, rows = (w - 8) // 9, (screen.height - y0 - 8) // 19
    wrapped = [part for line in prose for part in (textwrap.wrap(line, columns) or [""])]
    truth, windows = [], []
    for c in range(cols):
        shown = wrapped[c * 40:c * 40 + rows - 1]  # the cursor takes the last row
        path = os.path.join(wd, f"dense{c}.txt")
        with open(path, "w") as f:
            f.write("\n".join(shown) + "\n")
        # `tail -f`: lines appended to the file scroll the window (the scroll measurement).
        screen.procs.append(subprocess.Popen(
            ["xterm", "-geometry", f"{columns}x{rows}+{c * w}+{y0}",
             "-fa", "DejaVu Sans Mono", "-fs", "11", "-e", "tail", "-n", "+1", "-f", path],
            env=screen.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        truth.append(((c * w, (c + 1) * w, y0), " ".join(" ".join(shown).split())))
        # Scrolling brings lines no window shows.
        windows.append({"path": path, "shown": shown, "next": 40 * cols + 40})

    def scroll(n):
        win = windows[0]
        new = wrapped[win["next"]:win["next"] + n]
        win["next"] += n
        with open(win["path"], "a") as f:
            f.write("\n".join(new) + "\n")
        win["shown"] = (win["shown"] + new)[-(rows - 1):]
        truth[0] = (truth[0][0], " ".join(" ".join(win["shown"]).split()))

    time.sleep(2)
    return truth, scroll


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        prev = cur
    return prev[-1]


def straight_quotes(text):
    """Tesseract reads the font's straight quotes as typographic ones; not counted as errors."""
    return text.translate(str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'",
                                         "\u2019": "'"}))


def dense_cer(truth, answer):
    """CER of the dense text: per xterm, its words (centre inside the window) in reading order
    against the text it shows, whitespace collapsed. Words joined across two touching windows
    count as errors."""
    lines = [l for b in answer["blocks"] for l in b["lines"]]
    lines.sort(key=lambda l: (l["box"][1], l["box"][0]))
    errors = total = 0
    for (x0, x1, y0), expected in truth:
        words = [wd["text"] for l in lines for wd in l["words"]
                 if x0 <= wd["box"][0] + wd["box"][2] / 2 < x1 and wd["box"][1] >= y0]
        errors += edit_distance(expected, straight_quotes(" ".join(words)))
        total += len(expected)
    return errors / max(1, total)


def run_size(binary, width, height, display, rounds):
    wd = tempfile.mkdtemp(prefix="bs-ocrbench-")
    screen = E.Screen(display, width, height, wd)
    screen.start()
    dense_truth, scroll = dense_xterms(screen, wd)
    out = {"size": f"{width}x{height}"}
    try:
        # Capture cost: MIT-SHM into a memfd vs GetImage through the socket.
        for mode, flag in (("mit_shm", []), ("getimage", ["--no-shm"])):
            r = subprocess.run([binary, "capture", "--display", display, "--frames", "60",
                                "--quiet"] + flag, capture_output=True, text=True, check=True)
            stats = json.loads(r.stderr.strip().splitlines()[-1])
            out[f"capture_{mode}_ms_p50"] = stats["capture_ms_p50"]
            out[f"capture_{mode}_ms_p99"] = stats["capture_ms_p99"]
        # The full-width reading (OCR card 1.0.0) of the same dense frame, one worker.
        server = E.Server(binary, wd, ["ocr.workers=1", "ocr.timeout_ms=60000",
                                       "ocr.version=1.0.0"])
        server.start()
        try:
            raw, _ = E.capture_raw(binary, display, wd)
            full = []
            for i in range(rounds):
                s, r = server.ocr_raw(raw, width, height, query=f"?words=0&stream=full{i}")
                assert s == 200, r
                full.append(r["timing_ms"]["total"])
            _, dense = server.ocr_raw(raw, width, height, query=f"?stream=full{i}")
            lines = [l["text"] for b in dense["blocks"] for l in b["lines"]]
            out["card_1_0_0_workers1"] = {
                "full_ms": p50(full),
                "cer": E.character_error_rate(screen.expected_lines(), lines)[0],
                "dense_cer": dense_cer(dense_truth, dense)}
        finally:
            server.stop()
        for workers in (1, 2):
            server = E.Server(binary, wd, [f"ocr.workers={workers}", "ocr.timeout_ms=60000"])
            server.start()
            res = {}
            try:
                raw, _ = E.capture_raw(binary, display, wd)
                # (c) full dense frame: a fresh stream each time.
                full, full_rt = [], []
                for i in range(rounds):
                    t = time.perf_counter()
                    s, r = server.ocr_raw(raw, width, height, query=f"?words=0&stream=full{i}")
                    full_rt.append((time.perf_counter() - t) * 1e3)
                    assert s == 200, r
                    full.append(r["timing_ms"]["total"])
                lines = [l["text"] for b in r["blocks"] for l in b["lines"]]
                _, dense = server.ocr_raw(raw, width, height, query=f"?stream=full{i}")
                cer, _ = E.character_error_rate(screen.expected_lines(), lines)
                res.update(full_ms=p50(full), full_http_ms=p50(full_rt), cer=cer,
                           dense_cer=dense_cer(dense_truth, dense),
                           full_pieces=r["cache"]["pieces"], words=len(r["text"].split()))
                # (a) unchanged frame, same stream.
                server.ocr_raw(raw, width, height, query="?words=0&stream=s")
                same, same_rt = [], []
                for _ in range(50):
                    t = time.perf_counter()
                    s, r = server.ocr_raw(raw, width, height, query="?words=0&stream=s")
                    same_rt.append((time.perf_counter() - t) * 1e3)
                    assert r["cache"]["hit"]
                    same.append(r["timing_ms"]["total"])
                res.update(unchanged_ms=p50(same), unchanged_http_ms=p50(same_rt))
                # (b) one changed line.
                changed, changed_rt, tiles, pixels = [], [], [], []
                for i in range(rounds + 2):
                    screen.write_lines(13, ["brainstem perception test line",
                                            f"git push origin feature-{i}"])
                    time.sleep(0.6)
                    raw2, _ = E.capture_raw(binary, display, wd)
                    t = time.perf_counter()
                    s, r = server.ocr_raw(raw2, width, height, query="?words=0&stream=s")
                    changed_rt.append((time.perf_counter() - t) * 1e3)
                    if r["cache"]["full_read"]:
                        continue
                    changed.append(r["timing_ms"]["total"])
                    tiles.append(r["cache"]["tiles_changed"])
                    pixels.append(r["cache"]["pixels_read"])
                res.update(changed_ms=p50(changed), changed_http_ms=p50(changed_rt),
                           changed_tiles=p50(tiles), changed_pixels=p50(pixels))
                # (d) a terminal scrolled by 3 lines: its other lines moved, 3 are new.
                scrolled, read, remembered = [], [], []
                for i in range(rounds):
                    scroll(3)
                    time.sleep(1.0)
                    raw3, _ = E.capture_raw(binary, display, wd)
                    s, r = server.ocr_raw(raw3, width, height, query="?stream=s")
                    assert s == 200, r
                    scrolled.append(r["timing_ms"]["total"])
                    read.append(r["cache"]["pieces"])
                    remembered.append(r["cache"]["pieces_remembered"])
                res.update(scrolled_ms=p50(scrolled), scrolled_pieces_read=p50(read),
                           scrolled_pieces_remembered=p50(remembered),
                           scrolled_dense_cer=dense_cer(dense_truth, r))
                # Transport: shm (brainstem capture -> frame slot, OCR kind 1, cache hits).
                r = subprocess.run([binary, "capture", "--display", display, "--frames", "40",
                                    "--quiet", "--url", server.shm_url],
                                   capture_output=True, text=True, check=True)
                res["shm_capture_plus_ocr_round_trip_ms"] = json.loads(
                    r.stderr.strip().splitlines()[-1])["round_trip_ms_p50"]
                # Bytebot-style: PNG encode + base64 + HTTP POST (JSON) of the same frame.
                if workers == 1:
                    rgba = bgra_to_rgba(raw)
                    enc, b64, post = [], [], []
                    for _ in range(3):
                        t = time.perf_counter()
                        png = png_encode(rgba, width, height)
                        enc.append((time.perf_counter() - t) * 1e3)
                        t = time.perf_counter()
                        body = json.dumps({"image": base64.b64encode(png).decode()}).encode()
                        b64.append((time.perf_counter() - t) * 1e3)
                        t = time.perf_counter()
                        s, _ = server.request("POST", "/v1/ocr?words=0&stream=s", png,
                                              {"Content-Type": "image/png"})
                        post.append((time.perf_counter() - t) * 1e3)
                    res.update(bytebot_png_encode_ms=p50(enc), bytebot_base64_json_ms=p50(b64),
                               png_post_ms=p50(post), png_bytes=len(png), json_bytes=len(body),
                               raw_bytes=len(raw))
            finally:
                server.stop()
            out[f"workers{workers}"] = res
    finally:
        screen.stop()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/brainstem")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    results = [run_size(a.bin, 1280, 960, ":97", a.rounds),
               run_size(a.bin, 1920, 1080, ":98", a.rounds)]
    text = json.dumps(results, indent=1)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
