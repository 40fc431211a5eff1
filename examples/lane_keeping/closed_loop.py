#!/usr/bin/python3
"""Closed-loop check of a lane-keeping policy: drives the simulator with the policy's actions.

Two cars run in lockstep, each on its own simulator: one driven by the policy under test
(served over HTTP with POST /predict, or a TorchScript artifact run in-process with --local),
one by the teacher. Prints mean/max cross-track error of both, lap time and steps/s.

Exit status: 0 when the policy completed the laps without leaving the road
(|cross-track error| > lane_width / 2), 1 when it left the road or ran out of time, 2 on a
usage or transport error. Deterministic: no randomness anywhere, so it can serve as a test.

  /usr/bin/python3 examples/lane_keeping/closed_loop.py --url http://127.0.0.1:8001 --laps 3
  /usr/bin/python3 examples/lane_keeping/closed_loop.py --local artifacts/lane-keeping/v0.1.0

HTTP mode uses only the standard library (http.client with one keep-alive connection).
"""

import argparse
import http.client
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sim as simlib  # noqa: E402
from teacher import Teacher  # noqa: E402

MIN_AVG_SPEED = 3.0  # m/s: slower than this on average counts as not completing the laps


class HttpPolicy:
    """POST /predict over one persistent connection; reconnects once if the server closed it."""

    def __init__(self, url, timeout=10.0):
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"--url must look like http://host:port, got {url!r}")
        self.host = parsed.hostname
        self.port = parsed.port or 80
        self.base = parsed.path.rstrip("/")
        self.timeout = timeout
        self.conn = None
        self.version = None

    def _request(self, method, path, body=None):
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, self.base + path, body=payload, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
                continue
            if resp.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            if resp.status != 200:
                raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {data[:300]!r}")
            return json.loads(data)
        raise RuntimeError("unreachable")

    def metadata(self):
        return self._request("GET", "/metadata")

    def act(self, obs):
        reply = self._request("POST", "/predict",
                              {"observations": [obs.to_json()], "deterministic": True})
        self.version = reply.get("version", self.version)
        a = reply["actions"][0]
        return float(a["throttle"]), float(a["brake"]), float(a["steer"])


class TeacherPolicy:
    def __init__(self, env):
        self.env = env
        self.teacher = Teacher()

    def act(self, obs):
        del obs  # the teacher reads the simulator state
        return self.teacher.act(self.env)


class Run:
    """One car on its own simulator with its statistics."""

    def __init__(self, name, laps, start_offset=0.0):
        self.name = name
        self.env = simlib.LaneKeepingSim()
        self.obs = self.env.reset(offset_m=start_offset)
        self.laps = laps
        self.abs_cte = []
        self.lap_times = []
        self.off_road = False
        self.act_seconds = 0.0

    @property
    def done(self):
        return self.off_road or self.env.laps() >= self.laps

    def step(self, policy):
        start = time.perf_counter()
        action = policy.act(self.obs)
        self.act_seconds += time.perf_counter() - start
        laps_before = int(self.env.laps())
        self.obs = self.env.step(*action)
        self.abs_cte.append(abs(self.env.cross_track_error()))
        if int(self.env.laps()) > laps_before:
            self.lap_times.append(self.env.time)
        if self.env.off_road():
            self.off_road = True

    def summary(self):
        n = max(len(self.abs_cte), 1)
        laps = [b - a for a, b in zip([0.0] + self.lap_times, self.lap_times)]
        return {
            "mean_cte_m": sum(self.abs_cte) / n,
            "max_cte_m": max(self.abs_cte, default=0.0),
            "laps_done": self.env.laps(),
            "lap_times_s": laps,
            "steps": self.env.steps,
            "off_road": self.off_road,
            "policy_steps_per_s": self.env.steps / self.act_seconds if self.act_seconds else 0.0,
        }


def drive(student_policy, laps, start_offset=0.0):
    """Runs student and teacher in lockstep until both finish; returns both summaries.

    Both cars start at rest on the start line, `start_offset` metres left of the centre line.
    """
    student = Run("student", laps, start_offset)
    teacher_run = Run("teacher", laps, start_offset)
    teacher_policy = TeacherPolicy(teacher_run.env)
    length = student.env.track.length
    max_steps = int(laps * length / MIN_AVG_SPEED / simlib.DT)
    start = time.perf_counter()
    while (not student.done or not teacher_run.done) and \
            max(student.env.steps, teacher_run.env.steps) < max_steps:
        if not student.done:
            student.step(student_policy)
        if not teacher_run.done:
            teacher_run.step(teacher_policy)
    wall = time.perf_counter() - start
    return student.summary(), teacher_run.summary(), wall


def _fmt_laps(times):
    return ", ".join(f"{t:.2f}" for t in times) or "-"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--url", help="base URL of a server with POST /predict")
    group.add_argument("--local", metavar="VERSION_DIR",
                       help="run this artifact's model.pt in-process instead")
    parser.add_argument("--laps", type=int, default=3)
    parser.add_argument("--version",
                        help="fail unless the server (or local card) reports this version")
    parser.add_argument("--max-mean-cte", type=float, default=None,
                        help="also fail when the policy's mean |cte| exceeds this (m)")
    parser.add_argument("--start-offset", type=float, default=0.0,
                        help="start this many metres left of the centre line (recovery test)")
    parser.add_argument("--json", action="store_true", help="print the summaries as JSON")
    args = parser.parse_args(argv)

    try:
        if args.url:
            policy = HttpPolicy(args.url)
            meta = policy.metadata()
            served = str(meta.get("version", ""))
        else:
            from policy_io import LocalPolicy

            policy = LocalPolicy(args.local)
            served = policy.version
    except Exception as e:  # noqa: BLE001 - any setup failure is a usage/transport error
        print(f"closed_loop: cannot reach the policy: {e}", file=sys.stderr)
        return 2
    if args.version and served.lstrip("v") != args.version.lstrip("v"):
        print(f"closed_loop: policy reports version {served!r}, expected {args.version!r}",
              file=sys.stderr)
        return 1

    try:
        stu, tea, wall = drive(policy, args.laps, args.start_offset)
    except Exception as e:  # noqa: BLE001
        print(f"closed_loop: policy failed mid-run: {e}", file=sys.stderr)
        return 2
    if args.url and args.version and policy.version is not None and \
            str(policy.version).lstrip("v") != args.version.lstrip("v"):
        print(f"closed_loop: /predict answered with version {policy.version!r}", file=sys.stderr)
        return 1

    if args.json:
        print(json.dumps({"version": served, "student": stu, "teacher": tea, "wall_s": wall},
                         indent=2))
    else:
        print(f"policy version {served} ({'http ' + args.url if args.url else 'local'}), "
              f"{args.laps} laps, lane width {simlib.LANE_WIDTH:.1f} m")
        for name, s in (("student", stu), ("teacher", tea)):
            print(f"  {name:8s} mean|cte| {s['mean_cte_m']:.3f} m  max|cte| {s['max_cte_m']:.3f} m"
                  f"  laps {s['laps_done']:.2f}  lap times [{_fmt_laps(s['lap_times_s'])}] s"
                  f"  off_road {s['off_road']}")
        print(f"  student policy calls: {stu['steps']} at {stu['policy_steps_per_s']:.0f} steps/s;"
              f" wall {wall:.2f} s")

    if stu["off_road"]:
        print("FAIL: the policy left the road", file=sys.stderr)
        return 1
    if stu["laps_done"] < args.laps:
        print("FAIL: the policy did not complete the laps in time", file=sys.stderr)
        return 1
    if args.max_mean_cte is not None and stu["mean_cte_m"] > args.max_mean_cte:
        print(f"FAIL: mean |cte| {stu['mean_cte_m']:.3f} m > {args.max_mean_cte} m",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
