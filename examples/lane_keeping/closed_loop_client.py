#!/usr/bin/python3
"""Closed loop through the brainstem Python client, over shm and over http, compared.

Drives the lane-keeping simulator (sim.py) with a served policy twice from the same start:
once through `Client("shm://...")` and once through `Client("http://...")`, deterministic
policy, one observation per step as a simulator would. Prints steps/s of each transport and
where the time of a shm step goes, and checks that both runs produced the same trajectory
(bit-identical actions at every step), which they must: both transports hand the server the same
float32 observations and the server computes the same batch-1 answer.

Exit status: 0 when the trajectories are identical and the car stayed on the road, 1 otherwise,
2 on a usage or transport error.

  /usr/bin/python3 examples/lane_keeping/closed_loop_client.py \\
      --shm shm://default --http http://127.0.0.1:8080 --laps 1

Needs client/python on sys.path (added below when run from the repository) and
libbrainstem_client.so (BRAINSTEM_CLIENT_LIB, or a build directory of this repository).
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "client", "python"))

import sim as simlib  # noqa: E402
from closed_loop import MIN_AVG_SPEED  # noqa: E402

from brainstem_client import Client  # noqa: E402


def drive(client, steps, start_offset):
    """Runs one car for `steps` steps (or until it leaves the road); returns the trajectory as
    a list of (x, y, yaw, v, throttle, brake, steer), the policy time and the shm timings."""
    env = simlib.LaneKeepingSim()
    obs = env.reset(offset_m=start_offset)
    trajectory = []
    policy_s = 0.0
    breakdown = {"request_ns": 0, "queue_ns": 0, "compute_ns": 0, "response_ns": 0,
                 "total_ns": 0}
    for _ in range(steps):
        t0 = time.perf_counter()
        a = client.predict([{"speed": obs.speed, "steering": obs.steering,
                             "sensors": obs.sensors}])[0]
        policy_s += time.perf_counter() - t0
        for k in breakdown:
            breakdown[k] += client.last_timings.get(k, 0)
        obs = env.step(a["throttle"], a["brake"], a["steer"])
        trajectory.append((env.x, env.y, env.yaw, env.v, a["throttle"], a["brake"], a["steer"]))
        if env.off_road():
            break
    return trajectory, policy_s, breakdown, env


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shm", default="shm://default", help="shm URL of the server")
    parser.add_argument("--http", default="http://127.0.0.1:8080", help="http URL of the server")
    parser.add_argument("--laps", type=float, default=None,
                        help="drive this many laps (default: --steps)")
    parser.add_argument("--steps", type=int, default=2000, help="steps per run")
    parser.add_argument("--start-offset", type=float, default=0.0)
    args = parser.parse_args(argv)

    steps = args.steps
    if args.laps is not None:
        steps = int(args.laps * simlib.LaneKeepingSim().track.length / MIN_AVG_SPEED / simlib.DT)

    runs = {}
    try:
        for name, url in (("shm", args.shm), ("http", args.http)):
            with Client(url) as client:
                client.predict([{"speed": 0.0, "steering": 0.0,
                                 "sensors": [0.0] * (client.input_width - 2)}])  # warm-up
                runs[name] = drive(client, steps, args.start_offset)
    except Exception as e:  # noqa: BLE001 - any transport failure is reported the same way
        print(f"closed_loop_client: {e}", file=sys.stderr)
        return 2

    for name, (trajectory, policy_s, breakdown, env) in runs.items():
        n = len(trajectory)
        rate = n / policy_s if policy_s else 0.0
        line = (f"{name:4s}: {n} steps, {rate:,.0f} policy steps/s "
                f"({1e6 * policy_s / max(n, 1):.1f} us per step in Python), "
                f"laps {env.laps():.2f}, off_road {env.off_road()}")
        if name == "shm" and n:
            avg = {k: v / n / 1e3 for k, v in breakdown.items()}
            line += (f"\n      shm step in the library {avg['total_ns']:.1f} us: handoff "
                     f"{avg['request_ns']:.1f}, queue {avg['queue_ns']:.1f}, compute "
                     f"{avg['compute_ns']:.1f}, answer {avg['response_ns']:.1f} us")
        print(line)

    shm_traj, http_traj = runs["shm"][0], runs["http"][0]
    if shm_traj != http_traj:
        first = next((i for i, (a, b) in enumerate(zip(shm_traj, http_traj)) if a != b),
                     min(len(shm_traj), len(http_traj)))
        print(f"FAIL: trajectories differ from step {first} "
              f"(shm {shm_traj[first:first + 1]}, http {http_traj[first:first + 1]})",
              file=sys.stderr)
        return 1
    print(f"identical trajectories over shm and http ({len(shm_traj)} steps)")
    if runs["shm"][3].off_road():
        print("FAIL: the policy left the road", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
