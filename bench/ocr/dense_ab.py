#!/usr/bin/python3
"""Dense-frame A/B of two brainstem binaries on the same captured 1080p frame (the screen of
run_ocr_bench.py), one OCR worker, alternated: each server reads the frame on fresh streams
and the median of the pipeline's own time is kept. Optional --set applies to both.

  /usr/bin/python3 bench/ocr/dense_ab.py --a OLD/brainstem --b build/brainstem [--rounds 3]
      [--b-set ocr.version=1.0.0]
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "perception"))
import ocr_env as E  # noqa: E402
import run_ocr_bench as B  # noqa: E402


def read(binary, sets, raw, width, height, wd, rounds, truth):
    server = E.Server(binary, wd, ["ocr.workers=1", "ocr.timeout_ms=60000"] + sets)
    server.start()
    try:
        times = []
        for i in range(rounds + 1):  # the first read also creates the engine: not counted
            s, r = server.ocr_raw(raw, width, height, query=f"?words=0&stream=f{i}")
            assert s == 200, r
            if i:
                times.append(r["timing_ms"]["total"])
        _, full = server.ocr_raw(raw, width, height, query=f"?stream=f{rounds}")
        return statistics.median(times), B.dense_cer(truth, full)
    finally:
        server.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--b-set", action="append", default=[])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=2)
    a = ap.parse_args()
    wd = tempfile.mkdtemp(prefix="bs-ocr-ab-")
    screen = E.Screen(":96", 1920, 1080, wd)
    screen.start()
    try:
        truth, _ = B.dense_xterms(screen, wd)
        raw, _ = E.capture_raw(a.b, screen.display, wd)
    finally:
        screen.stop()
    for pair in range(a.pairs):
        for label, binary, sets in (("a", a.a, []), ("b", a.b, a.b_set)):
            ms, cer = read(binary, sets, raw, 1920, 1080, wd, a.rounds, truth)
            print(json.dumps({"pair": pair, "run": label, "binary": binary, "sets": sets,
                              "dense_ms_p50": round(ms, 1), "dense_cer": round(cer, 4)}),
                  flush=True)


if __name__ == "__main__":
    main()
