#!/usr/bin/python3
"""The baseline brainstem is compared with: the CarlaRL policy API in FastAPI + PyTorch.

This is what an RL team would typically deploy: FastAPI with pydantic validation, uvicorn with
one worker, the TorchScript artifact loaded with torch.jit.load, inference under no_grad. It
serves the same artifact directories and the same contract as brainstem:

  GET  /healthz   liveness and readiness
  GET  /metadata  model name, version, feature layout, actions
  POST /predict   {"observations": [{"speed", "steering", "sensors"}], "deterministic": true}
                  -> {"actions": [{"throttle", "brake", "steer"}], "version", "timingMs",
                      "deterministic"}
  POST /warmup    runs a few dummy batches
  GET  /versions  versions found next to the served one, and which one is loaded
  GET  /metrics   Prometheus text: request counts, errors, latency histogram

  /usr/bin/python3 bench/peer/server.py --port 8001 --artifact-dir artifacts/lane-keeping/v0.1.0

--artifact-dir may name a version directory (holding model_card.yaml), a model directory
(holding version directories: the newest stable version is served unless --version says
otherwise) or a repository root holding exactly one model directory.

Only Debian packages: python3-fastapi, python3-uvicorn, python3-torch, python3-numpy,
python3-yaml. The card is trusted only after the sha256 of every listed file matches; pickles
are never loaded.
"""

import argparse
import hashlib
import os
import re
import sys
import time
from typing import List

import numpy as np
import torch
import uvicorn
import yaml
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, conlist, confloat, conint

SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
CARD_FILE = "model_card.yaml"
LATENCY_BUCKETS_MS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000)


# ----------------------------------------------------------------------------- repository

def semver_key(name):
    """Sort key with semver precedence (a pre-release sorts before its release); None if not semver."""
    m = SEMVER.match(name)
    if not m:
        return None
    major, minor, patch, pre = m.groups()
    pre_key = []
    if pre:
        for part in pre.split("."):
            pre_key.append((0, int(part), "") if part.isdigit() else (1, 0, part))
    # Releases (no pre-release) sort after every pre-release of the same version.
    return (int(major), int(minor), int(patch), 0 if pre else 1, tuple(pre_key))


def version_dirs(model_dir):
    out = []
    for name in os.listdir(model_dir):
        path = os.path.join(model_dir, name)
        if os.path.isdir(path) and semver_key(name) is not None:
            out.append((semver_key(name), name, path))
    return sorted(out)


def is_policy_model(model_dir):
    """False for models whose newest card says `kind: <not policy>` (the screen-OCR model
    shares the repository; cards without `kind` are policies)."""
    card = os.path.join(version_dirs(model_dir)[-1][2], CARD_FILE)
    try:
        with open(card) as f:
            for line in f:
                if line.startswith("kind:"):
                    return line.split(":", 1)[1].split("#")[0].strip().strip("'\"") == "policy"
    except OSError:
        pass
    return True


def resolve_version_dir(artifact_dir, version=None):
    """Returns (model_dir, version_dir) following the rules in the module docstring."""
    if os.path.isfile(os.path.join(artifact_dir, CARD_FILE)):
        return os.path.dirname(os.path.abspath(artifact_dir)), artifact_dir
    model_dir = artifact_dir
    if not version_dirs(model_dir):
        models = [os.path.join(artifact_dir, d) for d in sorted(os.listdir(artifact_dir))
                  if os.path.isdir(os.path.join(artifact_dir, d))
                  and version_dirs(os.path.join(artifact_dir, d))
                  and is_policy_model(os.path.join(artifact_dir, d))]
        if len(models) != 1:
            raise SystemExit(f"{artifact_dir}: expected one model directory, found {len(models)}")
        model_dir = models[0]
    versions = version_dirs(model_dir)
    if version:
        for _, name, path in versions:
            if name.lstrip("v") == version.lstrip("v"):
                return model_dir, path
        raise SystemExit(f"version {version} not found in {model_dir}: "
                         f"{[n for _, n, _ in versions]}")
    stable = [v for v in versions if v[0][3] == 1]
    chosen = (stable or versions)[-1]
    return model_dir, chosen[2]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def per_element(value, size, default):
    if value is None:
        return np.full(size, default, dtype=np.float32)
    arr = np.asarray(value, dtype=np.float32).reshape(-1)
    if arr.size == 1:
        return np.full(size, arr[0], dtype=np.float32)
    if arr.size != size:
        raise ValueError(f"preprocess has {arr.size} values for a feature of size {size}")
    return arr


class LoadedModel:
    """A verified card plus its TorchScript module and the precomputed preprocessing vectors."""

    def __init__(self, version_dir, optimize=True):
        with open(os.path.join(version_dir, CARD_FILE), "r", encoding="utf-8") as f:
            self.card = yaml.safe_load(f)
        card = self.card
        for rel, want in (card.get("artifact_hashes") or {}).items():
            got = sha256_file(os.path.join(version_dir, rel))
            if got != want:
                raise SystemExit(f"sha256 mismatch for {rel}: card {want}, file {got}")
        ts_file = (card.get("files") or {}).get("torchscript")
        if not ts_file:
            raise SystemExit(f"{version_dir}: the card lists no torchscript file")
        if ts_file not in (card.get("artifact_hashes") or {}):
            raise SystemExit(f"{version_dir}: no sha256 for {ts_file} in the card")
        self.name = str(card["name"])
        self.version = str(card["version"])
        self.version_dir = version_dir

        names = [f["name"] for f in card["input"]]
        if names[:2] != ["speed", "steering"] or len(names) != 3 or names[2] != "sensors":
            raise SystemExit(f"expected inputs speed, steering, sensors; the card has {names}")
        sizes = [int(f["size"]) for f in card["input"]]
        if sizes[0] != 1 or sizes[1] != 1:
            raise SystemExit("speed and steering must have size 1")
        self.n_sensors = sizes[2]
        mean, std, scale, offset, lo, hi = [], [], [], [], [], []
        for feat, size in zip(card["input"], sizes):
            pre = feat.get("preprocess") or {}
            mean.append(per_element(pre.get("mean"), size, 0.0))
            std.append(per_element(pre.get("std"), size, 1.0))
            scale.append(per_element(pre.get("scale"), size, 1.0))
            offset.append(per_element(pre.get("offset"), size, 0.0))
            clip = pre.get("clip")
            lo.append(np.full(size, -np.inf if clip is None else clip[0], dtype=np.float32))
            hi.append(np.full(size, np.inf if clip is None else clip[1], dtype=np.float32))
        self.mean, self.std = np.concatenate(mean), np.concatenate(std)
        self.scale, self.offset = np.concatenate(scale), np.concatenate(offset)
        self.clip_lo, self.clip_hi = np.concatenate(lo), np.concatenate(hi)
        self.width = int(sum(sizes))

        actions = card["output"]["actions"]
        self.action_names = [str(a["name"]) for a in actions]
        self.low = np.array([a["low"] for a in actions], dtype=np.float32)
        self.high = np.array([a["high"] for a in actions], dtype=np.float32)
        log_std = card["output"].get("log_std")
        self.std_out = None if log_std is None else np.exp(np.asarray(log_std, dtype=np.float32))

        module = torch.jit.load(os.path.join(version_dir, ts_file), map_location="cpu").eval()
        if optimize:
            # Freezing folds the weights into the graph and optimize_for_inference fuses
            # what it can: about 25 -> 16 us per batch-1 call here. A team chasing latency
            # would do this too, and brainstem's TorchScript backend does the same.
            module = torch.jit.optimize_for_inference(torch.jit.freeze(module))
        self.module = module
        self.rng = np.random.default_rng()

    def preprocess(self, raw):
        x = (raw - self.mean) / self.std
        x = x * self.scale + self.offset
        return np.clip(x, self.clip_lo, self.clip_hi, out=x)

    def infer(self, raw, deterministic):
        """raw: float32 [B, width] -> float32 [B, n_actions], clipped to the action bounds."""
        x = torch.from_numpy(self.preprocess(raw))
        with torch.inference_mode():
            y = self.module(x).numpy()
        if not deterministic:
            y = y + self.std_out * self.rng.standard_normal(y.shape).astype(np.float32)
        return np.clip(y, self.low, self.high)

    def warmup(self, iterations):
        raw = np.tile(self.mean, (1, 1)).astype(np.float32)
        for _ in range(iterations):
            self.infer(raw, True)


# ----------------------------------------------------------------------------- API schema

# Finite floats only: NaN and +-inf are refused (Python's json accepts them as literals).
Speed = confloat(ge=0.0, le=200.0, allow_inf_nan=False)
Steering = confloat(ge=-1.0, le=1.0, allow_inf_nan=False)
SensorValue = confloat(ge=-1000.0, le=1000.0, allow_inf_nan=False)


class Observation(BaseModel):
    speed: Speed
    steering: Steering
    sensors: conlist(SensorValue, min_items=1, max_items=10000)


class PredictRequest(BaseModel):
    observations: conlist(Observation, min_items=1, max_items=1000)
    deterministic: bool = True


class WarmupRequest(BaseModel):
    iterations: conint(ge=1, le=10000) = 20


# ----------------------------------------------------------------------------- metrics

class Metrics:
    """Plain counters; every handler runs on the one event-loop thread, so no lock is needed."""

    def __init__(self):
        self.started = time.time()
        self.requests = {}  # (path, status) -> count
        self.observations = 0
        self.latency_counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self.latency_sum_ms = 0.0
        self.latency_n = 0

    def count(self, path, status):
        key = (path, status)
        self.requests[key] = self.requests.get(key, 0) + 1

    def observe_predict(self, ms, n_obs):
        self.observations += n_obs
        self.latency_sum_ms += ms
        self.latency_n += 1
        for i, b in enumerate(LATENCY_BUCKETS_MS):
            if ms <= b:
                self.latency_counts[i] += 1
                return
        self.latency_counts[-1] += 1

    def text(self, model):
        lines = ["# TYPE peer_requests_total counter"]
        for (path, status), n in sorted(self.requests.items()):
            lines.append(f'peer_requests_total{{path="{path}",status="{status}"}} {n}')
        lines += ["# TYPE peer_observations_total counter",
                  f"peer_observations_total {self.observations}",
                  "# TYPE peer_predict_latency_ms histogram"]
        cumulative = 0
        for b, n in zip(LATENCY_BUCKETS_MS, self.latency_counts):
            cumulative += n
            lines.append(f'peer_predict_latency_ms_bucket{{le="{b}"}} {cumulative}')
        lines.append(f'peer_predict_latency_ms_bucket{{le="+Inf"}} {self.latency_n}')
        lines += [f"peer_predict_latency_ms_sum {self.latency_sum_ms:.6f}",
                  f"peer_predict_latency_ms_count {self.latency_n}",
                  "# TYPE peer_uptime_seconds gauge",
                  f"peer_uptime_seconds {time.time() - self.started:.3f}",
                  f'peer_model_info{{name="{model.name}",version="{model.version}"}} 1']
        return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- app

def create_app(model, model_dir):
    app = FastAPI(title="CarlaRL policy (FastAPI peer)", docs_url=None, redoc_url=None)
    metrics = Metrics()

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError):
        metrics.count(request.url.path, 422)
        return JSONResponse(status_code=422, content={"error": "invalid request",
                                                      "detail": exc.errors()})

    def error(path, status, message):
        metrics.count(path, status)
        return JSONResponse(status_code=status, content={"error": message})

    @app.get("/healthz")
    async def healthz():
        metrics.count("/healthz", 200)
        return {"status": "ok", "model": model.name, "version": model.version}

    @app.get("/metadata")
    async def metadata():
        metrics.count("/metadata", 200)
        card = model.card
        # The CarlaRL metadata fields first (what clients read), then the card's details.
        return {
            "modelName": model.name,
            "version": model.version,
            "device": "cpu",
            "inputShape": [model.width],
            "inputs": [{"name": f["name"], "size": int(f["size"])} for f in card["input"]],
            "actionSpace": {n: {"low": float(lo), "high": float(hi)}
                            for n, lo, hi in zip(model.action_names, model.low, model.high)},
            "name": model.name,
            "description": card.get("description", ""),
            "formats": sorted((card.get("files") or {}).keys()),
            "format": "torchscript",
            "input": [{"name": f["name"], "size": int(f["size"])} for f in card["input"]],
            "actions": [{"name": n, "low": float(lo), "high": float(hi)}
                        for n, lo, hi in zip(model.action_names, model.low, model.high)],
            "stochastic": model.std_out is not None,
            "info": {str(k): str(v) for k, v in (card.get("info") or {}).items()},
        }

    # The handlers are `async def` on purpose: a batch-1 forward takes tens of microseconds,
    # far less than a hop to FastAPI's thread pool, so running it on the event loop is faster.
    @app.post("/predict")
    async def predict(req: PredictRequest):
        start = time.perf_counter()
        n = len(req.observations)
        raw = np.empty((n, model.width), dtype=np.float32)
        for i, o in enumerate(req.observations):
            if len(o.sensors) != model.n_sensors:
                return error("/predict", 422, f"observations[{i}].sensors has {len(o.sensors)} "
                             f"values; the model expects {model.n_sensors}")
            raw[i, 0] = o.speed
            raw[i, 1] = o.steering
            raw[i, 2:] = o.sensors
        if not req.deterministic and model.std_out is None:
            return error("/predict", 422, "this model has no log_std: only deterministic "
                         "actions are available")
        y = model.infer(raw, req.deterministic)
        names = model.action_names
        actions = [dict(zip(names, map(float, row))) for row in y]
        ms = (time.perf_counter() - start) * 1e3
        metrics.observe_predict(ms, n)
        metrics.count("/predict", 200)
        return JSONResponse({"actions": actions, "version": model.version,
                             "timingMs": round(ms, 4), "deterministic": req.deterministic})

    @app.post("/warmup")
    async def warmup(request: Request):
        iterations = 20
        body = await request.body()
        if body.strip():
            try:
                iterations = WarmupRequest.parse_raw(body).iterations
            except Exception as e:  # noqa: BLE001 - pydantic/JSON errors become a 422
                return error("/warmup", 422, f"invalid warmup request: {e}")
        start = time.perf_counter()
        model.warmup(iterations)
        metrics.count("/warmup", 200)
        return {"status": "ok", "iterations": iterations,
                "timingMs": round((time.perf_counter() - start) * 1e3, 3)}

    @app.get("/versions")
    async def versions():
        metrics.count("/versions", 200)
        listed = []
        for key, name, path in version_dirs(model_dir) if os.path.isdir(model_dir) else []:
            entry = {"version": name.lstrip("v"), "prerelease": key[3] == 0,
                     "loaded": os.path.abspath(path) == os.path.abspath(model.version_dir)}
            try:
                with open(os.path.join(path, CARD_FILE), "r", encoding="utf-8") as f:
                    card = yaml.safe_load(f)
                entry["description"] = card.get("description", "")
                entry["info"] = {str(k): str(v) for k, v in (card.get("info") or {}).items()}
            except (OSError, yaml.YAMLError) as e:
                entry["error"] = str(e)
            listed.append(entry)
        return {"model": model.name, "loaded": model.version, "versions": listed}

    @app.get("/metrics")
    async def prometheus():
        metrics.count("/metrics", 200)
        return PlainTextResponse(metrics.text(model), media_type="text/plain; version=0.0.4")

    return app


def main(argv=None):
    p = argparse.ArgumentParser(description="FastAPI + PyTorch peer of the brainstem server")
    p.add_argument("--artifact-dir", default="artifacts/lane-keeping/v0.1.0")
    p.add_argument("--version", default=os.environ.get("MODEL_VERSION") or None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (1: a batch-1 MLP gains nothing from more)")
    p.add_argument("--no-optimize", action="store_true",
                   help="serve the module as loaded (no freeze / optimize_for_inference)")
    p.add_argument("--warmup", type=int, default=20, help="dummy batches before serving")
    args = p.parse_args(argv)

    # One intra-op thread: the policy is tiny, and extra threads only add wake-up latency and
    # compete with the event loop. brainstem's default (intra_op_threads: 1) matches it.
    torch.set_num_threads(args.threads)
    model_dir, version_dir = resolve_version_dir(args.artifact_dir, args.version)
    t0 = time.perf_counter()
    model = LoadedModel(version_dir, optimize=not args.no_optimize)
    model.warmup(args.warmup)
    print(f"peer: serving {model.name} {model.version} from {version_dir} "
          f"(loaded in {(time.perf_counter() - t0) * 1e3:.0f} ms) on http://{args.host}:{args.port}",
          file=sys.stderr, flush=True)
    app = create_app(model, model_dir)
    uvicorn.run(app, host=args.host, port=args.port, workers=1, access_log=False,
                log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
