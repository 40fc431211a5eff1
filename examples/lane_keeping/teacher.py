"""The expert the student imitates: pure-pursuit steering plus a PI speed controller.

The teacher reads the simulator's state directly (privileged information: exact pose, the
centre line) rather than the observation. It is stateful only through the speed controller's
integrator; call reset() when a new rollout starts.
"""

import math

import sim as simlib


class Teacher:
    """Pure pursuit + PI speed control. One instance per rollout (the integrator is state)."""

    def __init__(self, lookahead_gain=0.45, lookahead_min=4.0, lookahead_max=12.0,
                 kp=1.2, ki=0.25, integral_limit=2.0):
        self.lookahead_gain = lookahead_gain  # s: lookahead grows with speed
        self.lookahead_min = lookahead_min
        self.lookahead_max = lookahead_max
        self.kp = kp
        self.ki = ki
        self.integral_limit = integral_limit
        self.reset()

    def reset(self):
        self.integral = 0.0

    def steer(self, s):
        """Pure pursuit: the arc from the rear axle through a centre-line point Ld ahead."""
        t = s.track
        ld = min(max(self.lookahead_gain * s.v + self.lookahead_min, self.lookahead_min),
                 self.lookahead_max)
        j = t.index_at(s.idx, ld)
        dx, dy = t.x[j] - s.x, t.y[j] - s.y
        dist = max(math.hypot(dx, dy), 1e-3)
        alpha = math.atan2(dy, dx) - s.yaw
        delta = math.atan2(2.0 * simlib.WHEELBASE * math.sin(alpha), dist)
        return min(max(delta / simlib.MAX_STEER_RAD, -1.0), 1.0)

    def pedals(self, s):
        """PI on the target-speed error, with drag/rolling feed-forward, as throttle/brake."""
        err = float(s.track.v_ref[s.idx]) - s.v
        self.integral = min(max(self.integral + err * simlib.DT, -self.integral_limit),
                            self.integral_limit)
        accel = self.kp * err + self.ki * self.integral
        accel += simlib.DRAG * s.v * s.v + (simlib.ROLLING if s.v > 0.0 else 0.0)
        if accel >= 0.0:
            return min(accel / simlib.MAX_ACCEL, 1.0), 0.0
        return 0.0, min(-accel / simlib.MAX_DECEL, 1.0)

    def act(self, s):
        """(throttle, brake, steer) for the simulator's current state."""
        throttle, brake = self.pedals(s)
        return throttle, brake, self.steer(s)


if __name__ == "__main__":
    # Quick self-check: three laps with the teacher alone.
    import time

    env = simlib.LaneKeepingSim()
    teacher = Teacher()
    env.reset()
    ctes = []
    start = time.perf_counter()
    while env.laps() < 3.0 and env.steps < 20000:
        env.step(*teacher.act(env))
        ctes.append(abs(env.cross_track_error()))
    print(f"track {env.track.length:.1f} m, steps {env.steps}, sim time {env.time:.1f} s, "
          f"mean |cte| {sum(ctes) / len(ctes):.3f} m, max |cte| {max(ctes):.3f} m, "
          f"v_ref range {env.track.v_ref.min() * 3.6:.1f}-{env.track.v_ref.max() * 3.6:.1f} km/h, "
          f"min radius {1 / abs(env.track.curv).max():.1f} m, "
          f"wall {time.perf_counter() - start:.2f} s")
