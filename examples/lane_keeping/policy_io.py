"""Model cards and in-process policies for the lane-keeping example.

Reads and writes model_card.yaml in the brainstem format, applies the card's preprocessing
(per element: (x - mean) / std, then x * scale + offset, then clip) and runs a TorchScript
artifact in-process, the same way a server would. Used by train.py (evaluation before export)
and closed_loop.py --local. Not thread-safe: one LocalPolicy per thread.
"""

import hashlib
import os

import numpy as np
import yaml

CARD_FILE = "model_card.yaml"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def _per_element(value, size, default):
    if value is None:
        return np.full(size, default, dtype=np.float32)
    arr = np.asarray(value, dtype=np.float32).reshape(-1)
    if arr.size == 1:
        return np.full(size, arr[0], dtype=np.float32)
    if arr.size != size:
        raise ValueError(f"preprocess list has {arr.size} values, feature has {size}")
    return arr


class Preprocessor:
    """Turns raw [B, width] observation rows into model features using the card's `input`."""

    def __init__(self, inputs):
        mean, std, scale, offset, lo, hi = [], [], [], [], [], []
        for feat in inputs:
            size = int(feat["size"])
            pre = feat.get("preprocess") or {}
            mean.append(_per_element(pre.get("mean"), size, 0.0))
            std.append(_per_element(pre.get("std"), size, 1.0))
            scale.append(_per_element(pre.get("scale"), size, 1.0))
            offset.append(_per_element(pre.get("offset"), size, 0.0))
            clip = pre.get("clip")
            lo.append(np.full(size, -np.inf if clip is None else clip[0], dtype=np.float32))
            hi.append(np.full(size, np.inf if clip is None else clip[1], dtype=np.float32))
        self.mean = np.concatenate(mean)
        self.std = np.concatenate(std)
        self.scale = np.concatenate(scale)
        self.offset = np.concatenate(offset)
        self.lo = np.concatenate(lo)
        self.hi = np.concatenate(hi)
        self.width = self.mean.size

    def __call__(self, raw):
        x = (np.asarray(raw, dtype=np.float32) - self.mean) / self.std
        x = x * self.scale + self.offset
        return np.clip(x, self.lo, self.hi).astype(np.float32)


def load_card(version_dir, verify=True):
    with open(os.path.join(version_dir, CARD_FILE), "r", encoding="utf-8") as f:
        card = yaml.safe_load(f)
    if verify:
        for rel, want in card.get("artifact_hashes", {}).items():
            got = sha256_file(os.path.join(version_dir, rel))
            if got != want:
                raise ValueError(f"sha256 mismatch for {rel}: card {want}, file {got}")
    return card


def _fmt(x):
    # Seven significant digits round-trip a float32 closely enough for normalization constants.
    text = f"{float(x):.7g}"
    # Keep a decimal point so every YAML reader (PyYAML's YAML 1.1 resolver included) reads a
    # float: "5.0" rather than "5", "1.0e-05" rather than "1e-05".
    mantissa, sep, exponent = text.partition("e")
    if "." not in mantissa and mantissa.lstrip("-").isdigit():
        mantissa += ".0"
    return mantissa + sep + exponent


def _fmt_list(values):
    return "[" + ", ".join(_fmt(v) for v in values) + "]"


def _fmt_preprocess(pre):
    parts = []
    for key in ("mean", "std", "scale", "offset"):
        if key in pre:
            v = pre[key]
            parts.append(f"{key}: {_fmt_list(v) if isinstance(v, (list, tuple)) else _fmt(v)}")
    if "clip" in pre:
        parts.append(f"clip: {_fmt_list(pre['clip'])}")
    return "{" + ", ".join(parts) + "}"


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_card(version_dir, name, version, description, files, inputs, actions, log_std, info):
    """Writes model_card.yaml with sha256 of every file in `files` (format -> file name)."""
    lines = [f"name: {name}", f"version: {version}", f"description: {_quote(description)}",
             "files:"]
    lines += [f"  {fmt}: {fname}" for fmt, fname in files.items()]
    lines.append("input:")
    for feat in inputs:
        lines.append(f"  - name: {feat['name']}")
        lines.append(f"    size: {int(feat['size'])}")
        if feat.get("preprocess"):
            lines.append(f"    preprocess: {_fmt_preprocess(feat['preprocess'])}")
    lines.append("output:")
    lines.append("  actions:")
    for a in actions:
        lines.append(f"    - {{name: {a['name']}, low: {_fmt(a['low'])}, high: {_fmt(a['high'])}}}")
    if log_std is not None:
        lines.append(f"  log_std: {_fmt_list(log_std)}")
    lines.append("artifact_hashes:")
    for fname in files.values():
        lines.append(f"  {fname}: {_quote(sha256_file(os.path.join(version_dir, fname)))}")
    lines.append("info:")
    for key, value in info.items():
        lines.append(f"  {key}: {_quote(value)}")
    with open(os.path.join(version_dir, CARD_FILE), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


class LocalPolicy:
    """A TorchScript artifact run in-process with the card's preprocessing and action clipping."""

    def __init__(self, version_dir):
        import torch  # only needed here; closed_loop.py in HTTP mode runs on the stdlib

        self.torch = torch
        self.card = load_card(version_dir)
        self.version = str(self.card["version"])
        self.pre = Preprocessor(self.card["input"])
        self.low = np.array([a["low"] for a in self.card["output"]["actions"]], dtype=np.float32)
        self.high = np.array([a["high"] for a in self.card["output"]["actions"]], dtype=np.float32)
        path = os.path.join(version_dir, self.card["files"]["torchscript"])
        self.module = torch.jit.load(path, map_location="cpu").eval()

    def act_batch(self, raw):
        """raw: [B, width] observation rows (speed, steering, sensors...) -> [B, 3] actions."""
        with self.torch.no_grad():
            x = self.torch.from_numpy(self.pre(raw))
            y = self.module(x).numpy()
        return np.clip(y, self.low, self.high)

    def act(self, obs):
        return tuple(float(v) for v in self.act_batch(obs.to_vector()[None, :])[0])
