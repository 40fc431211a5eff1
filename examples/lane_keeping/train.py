#!/usr/bin/python3
"""Trains the lane-keeping student by imitation and exports a brainstem artifact directory.

1. Perturbed teacher rollouts: the teacher drives from random starting poses (off-centre,
   misaligned, any speed) while noise is added to the actions that are *executed*; the labels
   are the teacher's clean actions. The student thus sees recovery states and cannot learn to
   copy the steering observation.
2. DAgger: the student drives (batched over several simulators), the teacher labels the
   states the student visits, the data is aggregated and the student is trained further.
3. Export: TorchScript (model.pt) and ONNX (model.onnx, opset 11, dynamic batch, only Gemm /
   Tanh / Sigmoid / Concat) plus model_card.yaml with the normalization, per-action log_std
   from the residuals and sha256 of both files. Both exports are checked against the PyTorch
   module (ONNX with a small numpy interpreter, and with OpenCV DNN when cv2 is installed).

  /usr/bin/python3 examples/lane_keeping/train.py --out artifacts/lane-keeping/v0.1.0 \
      --version 0.1.0 --seed 1

Deterministic for a given seed and arguments (one torch thread, seeded numpy and torch).
No pickles are written: the output directory holds model.pt, model.onnx and model_card.yaml.
"""

import argparse
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import closed_loop  # noqa: E402
import policy_io  # noqa: E402
import sim as simlib  # noqa: E402
from teacher import Teacher  # noqa: E402

ACTIONS = [
    {"name": "throttle", "low": 0.0, "high": 1.0},
    {"name": "brake", "low": 0.0, "high": 1.0},
    {"name": "steer", "low": -1.0, "high": 1.0},
]
N_SENSORS = len(simlib.SENSOR_NAMES)
WIDTH = 2 + N_SENSORS
LOSS_WEIGHTS = torch.tensor([1.0, 1.0, 4.0])  # steering errors matter most for lane keeping
OFF_TRACK_STOP_M = 3.0  # a rollout ends once the car is this far from the centre line


class Policy(nn.Module):
    """MLP on preprocessed features; squashes pedals with sigmoid and steering with tanh.

    Two output heads instead of one layer plus slicing keep the ONNX graph to Gemm, Tanh,
    Sigmoid and Concat, which every runtime we target (OpenCV DNN 4.6 included) supports.
    """

    def __init__(self, width, hidden):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width, hidden), nn.Tanh(),
                                  nn.Linear(hidden, hidden), nn.Tanh())
        self.pedals = nn.Linear(hidden, 2)
        self.steer = nn.Linear(hidden, 1)

    def forward(self, x):
        h = self.body(x)
        return torch.cat([torch.sigmoid(self.pedals(h)), torch.tanh(self.steer(h))], dim=1)


class OuNoise:
    """Ornstein-Uhlenbeck noise: smooth, mean-reverting, like a driver's slow drift."""

    def __init__(self, rng, sigma, theta=1.5, size=1):
        self.rng, self.sigma, self.theta = rng, sigma, theta
        self.state = np.zeros(size)

    def __call__(self):
        dt = simlib.DT
        self.state += -self.theta * self.state * dt + \
            self.sigma * math.sqrt(dt) * self.rng.standard_normal(self.state.shape)
        return self.state


def random_start(env, rng, max_offset=1.5, max_yaw=0.25):
    return env.reset(start_index=int(rng.integers(env.track.n)),
                     offset_m=float(rng.uniform(-max_offset, max_offset)),
                     yaw_offset=float(rng.uniform(-max_yaw, max_yaw)),
                     speed=float(rng.uniform(0.0, simlib.V_MAX)))


def perturbed_rollouts(rng, episodes, steps):
    """Teacher drives with noisy executed actions; returns (observations, clean labels)."""
    track = simlib.Track()
    obs_rows, labels = [], []
    for _ in range(episodes):
        env = simlib.LaneKeepingSim(track)
        teacher = Teacher()
        obs = random_start(env, rng)
        steer_noise = OuNoise(rng, sigma=float(rng.uniform(0.1, 0.45)))
        pedal_noise = OuNoise(rng, sigma=float(rng.uniform(0.1, 0.4)))
        kick, kick_left = 0.0, 0
        for _ in range(steps):
            throttle, brake, steer = teacher.act(env)
            obs_rows.append(obs.to_vector())
            labels.append((throttle, brake, steer))
            # Occasional hard kicks (a gust, a pothole) push the car far off the line.
            if kick_left == 0 and rng.random() < 0.005:
                kick, kick_left = float(rng.uniform(-0.5, 0.5)), int(rng.integers(5, 15))
            n = float(steer_noise()[0]) + (kick if kick_left > 0 else 0.0)
            kick_left = max(kick_left - 1, 0)
            p = float(pedal_noise()[0])
            obs = env.step(throttle + max(p, 0.0), brake + max(-p, 0.0), steer + n)
            if abs(env.cross_track_error()) > OFF_TRACK_STOP_M:
                break
    return np.array(obs_rows, dtype=np.float32), np.array(labels, dtype=np.float32)


def dagger_rollouts(rng, model, pre, envs, steps, noise_sigma=0.1):
    """The student drives `envs` simulators in lockstep (one batched forward per step) and the
    teacher labels every visited state. Small steering noise widens the visited distribution."""
    track = simlib.Track()
    sims = [simlib.LaneKeepingSim(track) for _ in range(envs)]
    teachers = [Teacher() for _ in range(envs)]
    obs = [random_start(s, rng, max_offset=1.0, max_yaw=0.15) for s in sims]
    alive = [True] * envs
    obs_rows, labels = [], []
    model.eval()
    for _ in range(steps):
        idx = [i for i in range(envs) if alive[i]]
        if not idx:
            break
        raw = np.stack([obs[i].to_vector() for i in idx])
        with torch.no_grad():
            act = model(torch.from_numpy(pre(raw))).numpy()
        for k, i in enumerate(idx):
            obs_rows.append(raw[k])
            labels.append(teachers[i].act(sims[i]))
            steer = float(act[k, 2]) + noise_sigma * float(rng.standard_normal())
            obs[i] = sims[i].step(float(act[k, 0]), float(act[k, 1]), steer)
            if abs(sims[i].cross_track_error()) > OFF_TRACK_STOP_M:
                alive[i] = False
    return np.array(obs_rows, dtype=np.float32), np.array(labels, dtype=np.float32)


def round7(values):
    # The card stores seven significant digits; train with exactly what the server will apply.
    return [float(f"{float(v):.7g}") for v in values]


def make_inputs(obs):
    speed_mean, speed_std = round7([obs[:, 0].mean(), max(obs[:, 0].std(), 1e-3)])
    s = obs[:, 2:]
    sens_mean = round7(s.mean(axis=0))
    sens_std = round7(np.maximum(s.std(axis=0), 1e-6))
    return [
        {"name": "speed", "size": 1,
         "preprocess": {"mean": speed_mean, "std": speed_std, "clip": [-5.0, 5.0]}},
        {"name": "steering", "size": 1},  # already in [-1, 1]
        {"name": "sensors", "size": N_SENSORS,
         "preprocess": {"mean": sens_mean, "std": sens_std, "clip": [-10.0, 10.0]}},
    ]


def fit(model, x, y, epochs, rng_torch, lr=3e-3, batch=256):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1), eta_min=lr * 0.05)
    n = x.shape[0]
    model.train()
    last = float("nan")
    for _ in range(epochs):
        perm = torch.randperm(n, generator=rng_torch)
        total = 0.0
        for start in range(0, n, batch):
            b = perm[start:start + batch]
            loss = (((model(x[b]) - y[b]) ** 2) * LOSS_WEIGHTS).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * b.numel()
        sched.step()
        last = total / n
    model.eval()
    return last


def weighted_mse(model, x, y):
    with torch.no_grad():
        return float((((model(x) - y) ** 2) * LOSS_WEIGHTS).mean())


# --- ONNX check with a minimal numpy interpreter (onnx 1.12 has no reference evaluator) ---

def run_onnx_numpy(path, x):
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    onnx.checker.check_model(m)
    env = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    env[m.graph.input[0].name] = x
    for node in m.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        ins = [env[i] for i in node.input]
        if node.op_type == "Gemm":
            a, b = ins[0], ins[1]
            if attrs.get("transA", 0):
                a = a.T
            if attrs.get("transB", 0):
                b = b.T
            out = attrs.get("alpha", 1.0) * (a @ b)
            if len(ins) > 2:
                out = out + attrs.get("beta", 1.0) * ins[2]
        elif node.op_type == "MatMul":
            out = ins[0] @ ins[1]
        elif node.op_type == "Add":
            out = ins[0] + ins[1]
        elif node.op_type == "Tanh":
            out = np.tanh(ins[0])
        elif node.op_type == "Relu":
            out = np.maximum(ins[0], 0)
        elif node.op_type == "Sigmoid":
            out = 1.0 / (1.0 + np.exp(-ins[0]))
        elif node.op_type == "Concat":
            out = np.concatenate(ins, axis=attrs["axis"])
        else:
            raise ValueError(f"unexpected ONNX op {node.op_type}: keep the graph OpenCV-friendly")
        env[node.output[0]] = out.astype(np.float32)
    return env[m.graph.output[0].name], sorted({n.op_type for n in m.graph.node})


def check_opencv(path, x):
    try:
        import cv2
    except ImportError:
        return None
    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(x)
    return net.forward()


def export(model, out_dir, width):
    example = torch.zeros(1, width)
    traced = torch.jit.trace(model, example)
    pt_path = os.path.join(out_dir, "model.pt")
    onnx_path = os.path.join(out_dir, "model.onnx")
    traced.save(pt_path)
    torch.onnx.export(model, example, onnx_path, input_names=["features"],
                      output_names=["actions"], opset_version=11, do_constant_folding=True,
                      dynamic_axes={"features": {0: "batch"}, "actions": {0: "batch"}})
    return pt_path, onnx_path


def closed_loop_eval(out_dir, laps):
    policy = policy_io.LocalPolicy(out_dir)
    return closed_loop.drive(policy, laps)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="version directory to write, e.g. .../v0.1.0")
    p.add_argument("--version", required=True, help="semver written into the card")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--episodes", type=int, default=48, help="perturbed teacher rollouts")
    p.add_argument("--episode-steps", type=int, default=500)
    p.add_argument("--dagger-iters", type=int, default=2)
    p.add_argument("--dagger-envs", type=int, default=16)
    p.add_argument("--dagger-steps", type=int, default=600)
    p.add_argument("--epochs", type=int, default=30, help="epochs of the first fit")
    p.add_argument("--dagger-epochs", type=int, default=12, help="epochs after each DAgger round")
    p.add_argument("--eval-laps", type=int, default=3)
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    torch.set_num_threads(1)  # determinism, and the build machine is shared
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    obs, labels = perturbed_rollouts(rng, args.episodes, args.episode_steps)
    print(f"perturbed rollouts: {len(obs)} samples ({time.perf_counter() - t0:.1f} s)")
    inputs = make_inputs(obs)
    pre = policy_io.Preprocessor(inputs)
    model = Policy(WIDTH, args.hidden)

    def tensors(o, l):
        return torch.from_numpy(pre(o)), torch.from_numpy(l)

    x, y = tensors(obs, labels)
    loss = fit(model, x, y, args.epochs, gen)
    print(f"fit 0: {len(obs)} samples, train loss {loss:.5f} ({time.perf_counter() - t0:.1f} s)")
    for it in range(args.dagger_iters):
        o, l = dagger_rollouts(rng, model, pre, args.dagger_envs, args.dagger_steps)
        obs, labels = np.concatenate([obs, o]), np.concatenate([labels, l])
        x, y = tensors(obs, labels)
        loss = fit(model, x, y, args.dagger_epochs, gen, lr=1.5e-3)
        print(f"dagger {it + 1}: +{len(o)} samples -> {len(obs)}, train loss {loss:.5f} "
              f"({time.perf_counter() - t0:.1f} s)")

    # Held-out check on fresh perturbed rollouts (never trained on).
    vo, vl = perturbed_rollouts(np.random.default_rng(args.seed + 10_000), 8, args.episode_steps)
    vx, vy = tensors(vo, vl)
    train_loss, val_loss = weighted_mse(model, x, y), weighted_mse(model, vx, vy)
    with torch.no_grad():
        resid = (model(x) - y).numpy()
    rmse = np.sqrt((resid ** 2).mean(axis=0))
    log_std = round7(np.log(np.maximum(resid.std(axis=0), 1e-3)))
    print(f"final: train loss {train_loss:.5f}, held-out loss {val_loss:.5f}, "
          f"rmse throttle/brake/steer {rmse[0]:.4f}/{rmse[1]:.4f}/{rmse[2]:.4f}")
    train_seconds = time.perf_counter() - t0

    os.makedirs(args.out, exist_ok=True)
    for stale in ("model.pt", "model.onnx", policy_io.CARD_FILE):
        if os.path.exists(os.path.join(args.out, stale)):
            os.remove(os.path.join(args.out, stale))
    pt_path, onnx_path = export(model, args.out, WIDTH)

    # Both exports must compute what the PyTorch module computes.
    probe = pre(np.concatenate([vo[:: max(len(vo) // 256, 1)][:256],
                                np.random.default_rng(0).normal(0, 30, (16, WIDTH)).astype(np.float32)]))
    with torch.no_grad():
        ref = model(torch.from_numpy(probe)).numpy()
        ts = torch.jit.load(pt_path)(torch.from_numpy(probe)).numpy()
    onnx_out, ops = run_onnx_numpy(onnx_path, probe)
    cv_out = check_opencv(onnx_path, probe)
    err_ts = float(np.abs(ts - ref).max())
    err_onnx = float(np.abs(onnx_out - ts).max())
    err_cv = None if cv_out is None else float(np.abs(cv_out - ts).max())
    print(f"export check: torchscript {err_ts:.2e}, onnx(numpy) {err_onnx:.2e}, "
          f"opencv {'not installed' if err_cv is None else f'{err_cv:.2e}'}; onnx ops {ops}")
    if err_ts > 1e-6 or err_onnx > 1e-5 or (err_cv is not None and err_cv > 1e-4):
        raise SystemExit("export mismatch")

    info = {
        "framework": f"torch {torch.__version__}",
        "architecture": f"mlp {WIDTH}-{args.hidden}-{args.hidden}-3 tanh, sigmoid/tanh heads",
        "teacher": "pure pursuit (Ld = clamp(0.45 s * v + 4 m, 4, 12)) + PI speed (kp 1.2, ki 0.25)",
        "training_data": f"{len(obs)} samples: {args.episodes} perturbed teacher rollouts + "
                         f"{args.dagger_iters} DAgger rounds x {args.dagger_envs} envs",
        "seed": args.seed,
        "train_loss": f"{train_loss:.6f}",
        "heldout_loss": f"{val_loss:.6f}",
        "training_seconds": f"{train_seconds:.1f}",
        "sensors": ", ".join(simlib.SENSOR_NAMES),
    }
    # A first card (without closed-loop results) so LocalPolicy can load the artifact.
    write = lambda: policy_io.write_card(  # noqa: E731
        args.out, "lane-keeping", args.version,
        "Lane-keeping MLP imitating a pure-pursuit + PI speed controller",
        {"torchscript": "model.pt", "onnx": "model.onnx"}, inputs, ACTIONS, log_std, info)
    write()
    stu, tea, wall = closed_loop_eval(args.out, args.eval_laps)
    print(f"closed loop ({args.eval_laps} laps): student mean|cte| {stu['mean_cte_m']:.3f} m "
          f"max {stu['max_cte_m']:.3f} m off_road {stu['off_road']} laps {stu['laps_done']:.2f}; "
          f"teacher mean|cte| {tea['mean_cte_m']:.3f} m max {tea['max_cte_m']:.3f} m "
          f"({wall:.1f} s)")
    info["closed_loop_student_cte_m"] = f"mean {stu['mean_cte_m']:.3f}, max {stu['max_cte_m']:.3f}"
    info["closed_loop_teacher_cte_m"] = f"mean {tea['mean_cte_m']:.3f}, max {tea['max_cte_m']:.3f}"
    write()
    total = time.perf_counter() - t0
    sizes = {f: os.path.getsize(os.path.join(args.out, f)) for f in sorted(os.listdir(args.out))}
    print(f"wrote {args.out}: {sizes}; total {total:.1f} s")
    if stu["off_road"] or stu["laps_done"] < args.eval_laps:
        raise SystemExit("the trained student does not complete the laps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
