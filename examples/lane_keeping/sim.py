"""A small lane-keeping simulator: a kinematic bicycle on a closed, smooth track.

The track is a closed curve in polar form, r(theta) = R * (1 + a*sin(2 theta) + b*cos(3 theta)),
resampled at a fixed arc-length step so that look-ups by distance are index arithmetic. It bends
both ways (left and right) and its radius never drops below about 20 m, so a car at a sensible
speed can follow it inside a 4 m lane.

The car is a kinematic bicycle (wheelbase 2.7 m) with a rate-limited steering actuator and a
longitudinal model of throttle/brake/drag. One step is dt = 0.05 s.

The observation follows the CarlaRL schema: speed (km/h), steering (the steering actuator's
position in [-1, 1]) and eight sensors; docs/example-policy.md explains each sensor.

Only numpy is needed. Everything is deterministic: there is no randomness in here; callers
that want noise add it to the actions.
"""

import math

import numpy as np

DT = 0.05  # s per step
WHEELBASE = 2.7  # m
LANE_WIDTH = 4.0  # m; the car has left the road when |cross-track error| > LANE_WIDTH / 2
MAX_STEER_RAD = 0.55  # road-wheel angle at steer = +-1
STEER_RATE = 2.5  # steering actuator slew, in normalized units per second
MAX_ACCEL = 4.0  # m/s^2 at full throttle
MAX_DECEL = 8.0  # m/s^2 at full brake
DRAG = 0.0015  # 1/m: aerodynamic drag, a = DRAG * v^2
ROLLING = 0.15  # m/s^2 rolling resistance when moving

V_MAX = 16.0  # m/s: speed limit of the target profile (57.6 km/h)
A_LAT_MAX = 3.0  # m/s^2: lateral acceleration the target profile allows in bends
A_LONG_PLAN = 2.0  # m/s^2: deceleration the target profile plans with before bends

# Sensor layout (indices into Observation.sensors).
SENSOR_NAMES = (
    "cte_m",  # signed cross-track error, m, positive = car left of the centre line
    "heading_err_rad",  # car yaw minus track tangent, wrapped to (-pi, pi]
    "curv_0m",  # track curvature at the car's projection, 1/m (positive = left bend)
    "curv_5m",  # ... 5 m ahead along the centre line
    "curv_15m",  # ... 15 m ahead
    "curv_30m",  # ... 30 m ahead
    "speed_err_mps",  # target speed at the projection minus current speed, m/s
    "lat_10m",  # lateral offset of the centre-line point 10 m ahead, in the car's frame, m
)
CURVATURE_LOOKAHEADS_M = (0.0, 5.0, 15.0, 30.0)
LATERAL_LOOKAHEAD_M = 10.0


def _wrap(angle):
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


class Track:
    """A closed centre line sampled every `ds` metres, with heading, curvature and a speed profile."""

    def __init__(self, radius=60.0, a=0.22, b=0.10, ds=0.25):
        # Dense polar sampling first, then resample by arc length.
        theta = np.linspace(0.0, 2.0 * np.pi, 20000, endpoint=False)
        r = radius * (1.0 + a * np.sin(2.0 * theta) + b * np.cos(3.0 * theta))
        px, py = r * np.cos(theta), r * np.sin(theta)
        seg = np.hypot(np.diff(px, append=px[0]), np.diff(py, append=py[0]))
        s_dense = np.concatenate([[0.0], np.cumsum(seg)])
        self.length = float(s_dense[-1])
        n = int(round(self.length / ds))
        self.ds = self.length / n
        s = np.arange(n) * self.ds
        px_c, py_c = np.append(px, px[0]), np.append(py, py[0])
        self.x = np.interp(s, s_dense, px_c)
        self.y = np.interp(s, s_dense, py_c)
        self.n = n
        # Heading and curvature by central differences on the closed loop.
        dx = (np.roll(self.x, -1) - np.roll(self.x, 1)) / (2 * self.ds)
        dy = (np.roll(self.y, -1) - np.roll(self.y, 1)) / (2 * self.ds)
        ddx = (np.roll(self.x, -1) - 2 * self.x + np.roll(self.x, 1)) / self.ds**2
        ddy = (np.roll(self.y, -1) - 2 * self.y + np.roll(self.y, 1)) / self.ds**2
        self.yaw = np.arctan2(dy, dx)
        self.curv = (dx * ddy - dy * ddx) / np.power(dx * dx + dy * dy, 1.5)
        # Smooth curvature a little: second differences of a resampled polyline are noisy.
        k = 9
        kernel = np.ones(k) / k
        padded = np.concatenate([self.curv[-k:], self.curv, self.curv[:k]])
        self.curv = np.convolve(padded, kernel, mode="same")[k:-k]
        self.v_ref = self._speed_profile()

    def _speed_profile(self):
        v = np.minimum(V_MAX, np.sqrt(A_LAT_MAX / np.maximum(np.abs(self.curv), 1e-6)))
        # Backward passes so the profile slows down before a bend at A_LONG_PLAN; two loops
        # around the closed track let the constraint wrap past the start line.
        for _ in range(2):
            for i in range(self.n - 1, -1, -1):
                nxt = v[(i + 1) % self.n]
                v[i] = min(v[i], math.sqrt(nxt * nxt + 2.0 * A_LONG_PLAN * self.ds))
        return v

    def index_at(self, idx, ahead_m):
        return int(idx + round(ahead_m / self.ds)) % self.n

    def project(self, x, y, hint=None):
        """Index of the nearest centre-line sample; searches a window around `hint` when given."""
        if hint is None:
            d2 = (self.x - x) ** 2 + (self.y - y) ** 2
            return int(np.argmin(d2))
        window = 200  # +-50 m: far more than a car moves between two projections
        idx = (np.arange(-window, window + 1) + hint) % self.n
        d2 = (self.x[idx] - x) ** 2 + (self.y[idx] - y) ** 2
        return int(idx[np.argmin(d2)])


class Observation:
    """One CarlaRL observation: speed km/h, steering in [-1, 1], eight sensors."""

    __slots__ = ("speed", "steering", "sensors")

    def __init__(self, speed, steering, sensors):
        self.speed = speed
        self.steering = steering
        self.sensors = sensors

    def to_json(self):
        return {"speed": self.speed, "steering": self.steering, "sensors": list(self.sensors)}

    def to_vector(self):
        return np.array([self.speed, self.steering, *self.sensors], dtype=np.float32)


class LaneKeepingSim:
    """The car on the track. Not thread-safe; one instance per rollout."""

    def __init__(self, track=None):
        self.track = track if track is not None else Track()
        self.reset()

    def reset(self, start_index=0, offset_m=0.0, yaw_offset=0.0, speed=0.0):
        t = self.track
        i = start_index % t.n
        nx, ny = -math.sin(t.yaw[i]), math.cos(t.yaw[i])  # left normal
        self.x = t.x[i] + offset_m * nx
        self.y = t.y[i] + offset_m * ny
        self.yaw = t.yaw[i] + yaw_offset
        self.v = speed
        self.steer = 0.0  # actuator position, normalized
        self.idx = t.project(self.x, self.y)
        self.progress = 0.0  # metres along the centre line since reset (unwrapped)
        self.time = 0.0
        self.steps = 0
        return self.observe()

    def cross_track_error(self):
        t, i = self.track, self.idx
        nx, ny = -math.sin(t.yaw[i]), math.cos(t.yaw[i])
        return (self.x - t.x[i]) * nx + (self.y - t.y[i]) * ny

    def off_road(self):
        return abs(self.cross_track_error()) > LANE_WIDTH / 2.0

    def laps(self):
        return self.progress / self.track.length

    def step(self, throttle, brake, steer):
        """Applies one action for DT seconds and returns the new observation.

        Inputs are clipped to their ranges (throttle, brake in [0, 1]; steer in [-1, 1]).
        """
        throttle = min(max(float(throttle), 0.0), 1.0)
        brake = min(max(float(brake), 0.0), 1.0)
        steer = min(max(float(steer), -1.0), 1.0)
        max_delta = STEER_RATE * DT
        self.steer += min(max(steer - self.steer, -max_delta), max_delta)
        delta = self.steer * MAX_STEER_RAD

        accel = throttle * MAX_ACCEL - brake * MAX_DECEL - DRAG * self.v * self.v
        if self.v > 0.0:
            accel -= ROLLING
        # Semi-implicit Euler: new speed first, then pose with it.
        self.v = max(0.0, self.v + accel * DT)
        self.x += self.v * math.cos(self.yaw) * DT
        self.y += self.v * math.sin(self.yaw) * DT
        self.yaw = _wrap(self.yaw + self.v / WHEELBASE * math.tan(delta) * DT)

        t = self.track
        new_idx = t.project(self.x, self.y, self.idx)
        moved = (new_idx - self.idx) % t.n
        if moved > t.n // 2:  # went backwards
            moved -= t.n
        self.progress += moved * t.ds
        self.idx = new_idx
        self.time += DT
        self.steps += 1
        return self.observe()

    def observe(self):
        t, i = self.track, self.idx
        cte = self.cross_track_error()
        heading_err = _wrap(self.yaw - t.yaw[i])
        curvs = [float(t.curv[t.index_at(i, d)]) for d in CURVATURE_LOOKAHEADS_M]
        speed_err = float(t.v_ref[i]) - self.v
        j = t.index_at(i, LATERAL_LOOKAHEAD_M)
        dx, dy = t.x[j] - self.x, t.y[j] - self.y
        lat = -math.sin(self.yaw) * dx + math.cos(self.yaw) * dy
        sensors = [cte, heading_err, *curvs, speed_err, lat]
        sensors = [float(min(max(s, -1000.0), 1000.0)) for s in sensors]
        return Observation(speed=min(self.v * 3.6, 200.0), steering=float(self.steer), sensors=sensors)
