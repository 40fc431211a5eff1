"""The OCR model in the repository (artifacts/screen-ocr): its card configures the server's OCR,
/versions, /v1/ocr/info, /metrics and /v1/status report it, a wrong ocr.version stops start-up,
a traineddata hash mismatch is a loud warning plus hash_verified=false. Only starts servers
(no screen needed): OCR engines load lazily, so no frame is read here."""
import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
BIN = os.environ.get("BRAINSTEM_BIN", str(REPO / "build" / "brainstem"))
CURRENT = "1.1.0"  # the newest stable OCR card, which the server loads by default
CARD = ARTIFACTS / "screen-ocr" / f"v{CURRENT}" / "model_card.yaml"
INSTALLED = Path("/usr/share/tesseract-ocr/5/tessdata/eng.traineddata")
# Only these reach the server: a developer's TESSDATA_PREFIX or PORT must not change results.
ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "LD_LIBRARY_PATH", "TMPDIR")


def card_sha256():
    for line in CARD.read_text().splitlines():
        if line.strip().startswith("sha256:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no sha256 in the card")


def installed_matches():
    return INSTALLED.exists() and hashlib.sha256(INSTALLED.read_bytes()).hexdigest() == card_sha256()


def args(workdir, artifact_dir, sets):
    out = [BIN, "serve", "--port", "0", "--port-file", str(Path(workdir) / "port"),
           "--artifact-dir", str(artifact_dir), "--format", "onnx", "--set", "shm.enabled=false"]
    for s in sets:
        out += ["--set", s]
    return out


class Server:
    def __init__(self, workdir, artifact_dir=ARTIFACTS, sets=()):
        self.workdir = Path(workdir)
        self.err_path = self.workdir / "stderr.log"
        env = {k: os.environ[k] for k in ENV_KEEP if k in os.environ}
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(args(workdir, artifact_dir, sets), env=env,
                                         stdout=subprocess.DEVNULL, stderr=err, cwd=workdir)
        port_file = self.workdir / "port"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.stderr()}")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError("server did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}"

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return r.read().decode()

    def json(self, path):
        return json.loads(self.get(path))

    def stop(self):
        self.proc.terminate()
        assert self.proc.wait(timeout=20) == 0, self.stderr()


def expect_exit(workdir, artifact_dir=ARTIFACTS, sets=()):
    env = {k: os.environ[k] for k in ENV_KEEP if k in os.environ}
    p = subprocess.run(args(workdir, artifact_dir, sets), env=env, capture_output=True,
                       timeout=60, cwd=workdir)
    assert not (Path(workdir) / "port").exists()
    return p.returncode, p.stderr.decode(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("ocr-model"))
    yield s
    s.stop()


def test_versions_lists_the_ocr_model_and_keeps_the_policy_fields(server):
    v = server.json("/versions")
    # The CarlaRL fields describe the policy, as before.
    assert v["model"] == "lane-keeping"
    assert v["current"] == "0.2.0"
    assert all(e["card"]["name"] == "lane-keeping" for e in v["versions"] if "card" in e)
    ocr = v["ocr"]
    assert ocr["name"] == "screen-ocr"
    assert ocr["loaded"] == CURRENT
    [entry] = [e for e in ocr["versions"] if e["version"] == CURRENT]
    assert entry["current"] is True and entry["stable"] is True and entry["path"] == f"v{CURRENT}"
    [older] = [e for e in ocr["versions"] if e["version"] == "1.0.0"]
    assert older["current"] is False and older["card"]["segmentation"]["line_width_scale"] == 1
    card = entry["card"]
    assert card["kind"] == "ocr" and card["language"] == "eng"
    assert card["engine"] == {"name": "tesseract", "mode": "lstm"}
    assert card["traineddata"]["sha256"] == card_sha256()
    assert "tesseract-ocr-eng" in card["traineddata"]["source"]
    assert card["segmentation"]["line_psm"] == 7
    assert card["segmentation"]["line_width_scale"] == 0.65
    assert card["limits"]["max_frame_dimension"] == 16384
    assert ocr["hash_verified"] is installed_matches()


def test_ocr_info_reports_the_loaded_card(server):
    info = server.json("/v1/ocr/info")
    model = info["ocr_model"]
    assert model["name"] == "screen-ocr" and model["version"] == CURRENT
    assert model["source"] == "card"
    assert model["card"]["limits"] == {"max_image_pixels": 67108864, "max_frame_dimension": 16384,
                                       "max_answer_bytes": 3071}
    assert model["hash_verified"] is installed_matches()
    # The card's values are the service's settings.
    assert info["language"] == "eng" and info["tile_size"] == 128 and info["psm"] == 11
    assert info["segmentation"] == "xycut" and info["polarity_fix"] is True
    assert info["line_width_scale"] == 0.65


def test_metrics_and_status_name_the_ocr_model(server):
    verified = "true" if installed_matches() else "false"
    assert (f'brainstem_ocr_model_info{{name="screen-ocr",version="{CURRENT}",language="eng",'
            f'hash_verified="{verified}"}} 1') in server.get("/metrics")
    ocr = server.json("/v1/status")["ocr"]
    assert ocr["model"] == f"screen-ocr {CURRENT}"
    for key in ("images_per_s", "p50_ms", "p90_ms", "p99_ms", "cache_hit_ratio",
                "tiles_reread_total", "cache_hits_total"):
        assert key in ocr, key


def test_explicit_keys_override_the_card(tmp_path):
    s = Server(tmp_path, sets=("ocr.tile_size=64", "ocr.psm=6", "ocr.line_width_scale=1"))
    try:
        info = s.json("/v1/ocr/info")
        assert info["tile_size"] == 64 and info["psm"] == 6 and info["line_width_scale"] == 1
        card = info["ocr_model"]["card"]  # the card is unchanged
        assert card["tile_size"] == 128 and card["segmentation"]["line_width_scale"] == 0.65
    finally:
        s.stop()


def test_an_older_version_can_be_pinned(tmp_path):
    s = Server(tmp_path, sets=("ocr.version=1.0.0",))
    try:
        info = s.json("/v1/ocr/info")
        assert info["ocr_model"]["version"] == "1.0.0"
        assert info["line_width_scale"] == 1  # 1.0.0 reads lines at their full width
    finally:
        s.stop()


def test_line_width_scale_out_of_range_refuses_to_start(tmp_path):
    rc, err = expect_exit(tmp_path, sets=("ocr.line_width_scale=0.1",))
    assert rc != 0 and "ocr.line_width_scale" in err and "0.1" in err, err


def test_unknown_ocr_version_refuses_to_start(tmp_path):
    rc, err = expect_exit(tmp_path, sets=("ocr.version=9.9.9",))
    assert rc != 0
    assert "ocr.version" in err and "9.9.9" in err and "1.0.0" in err, err


def test_policy_named_as_ocr_model_refuses_to_start(tmp_path):
    rc, err = expect_exit(tmp_path, sets=("ocr.model=lane-keeping",))
    assert rc != 0 and "is a policy model, not an OCR model" in err, err


def copy_repo(tmp_path, with_ocr=True):
    root = tmp_path / "artifacts"
    shutil.copytree(ARTIFACTS / "lane-keeping", root / "lane-keeping")
    if with_ocr:
        shutil.copytree(ARTIFACTS / "screen-ocr", root / "screen-ocr")
    return root


def test_bad_hash_is_a_loud_warning_and_a_flag(tmp_path):
    root = copy_repo(tmp_path)
    card = root / "screen-ocr" / f"v{CURRENT}" / "model_card.yaml"
    card.write_text(card.read_text().replace(card_sha256(), "0" * 64))
    (tmp_path / "run").mkdir()
    s = Server(tmp_path / "run", artifact_dir=root)
    try:
        err = s.stderr()
        assert "traineddata NOT verified" in err and "0" * 64 in err, err
        assert s.json("/v1/ocr/info")["ocr_model"]["hash_verified"] is False
        assert s.json("/versions")["ocr"]["hash_verified"] is False
        assert 'hash_verified="false"' in s.get("/metrics")
    finally:
        s.stop()


def test_missing_artifact_falls_back_unless_named(tmp_path):
    root = copy_repo(tmp_path, with_ocr=False)
    (tmp_path / "a").mkdir()
    s = Server(tmp_path / "a", artifact_dir=root)
    try:
        assert "OCR model 'screen-ocr' not found" in s.stderr()
        info = s.json("/v1/ocr/info")
        assert info["ocr_model"]["source"] == "built-in" and info["language"] == "eng"
        assert s.json("/versions")["ocr"]["loaded"] is None
        assert "brainstem_ocr_model_info" not in s.get("/metrics")
    finally:
        s.stop()
    (tmp_path / "b").mkdir()
    rc, err = expect_exit(tmp_path / "b", artifact_dir=root, sets=("ocr.model=screen-ocr",))
    assert rc != 0 and "ocr.model" in err and "screen-ocr" in err, err


def test_invalid_card_falls_back_unless_its_version_is_named(tmp_path):
    root = copy_repo(tmp_path)
    for card in (root / "screen-ocr").glob("v*/model_card.yaml"):  # every version broken
        card.write_text(card.read_text().replace("tile_size: 128", "tile_size: huge"))
    (tmp_path / "a").mkdir()
    s = Server(tmp_path / "a", artifact_dir=root)
    try:
        assert "ocr card: tile_size: 'huge' is not an integer" in s.stderr()
        assert s.json("/v1/ocr/info")["ocr_model"]["source"] == "built-in"
        entries = s.json("/versions")["ocr"]["versions"]
        assert len(entries) == 2 and all("tile_size" in e["error"] for e in entries)
    finally:
        s.stop()
    (tmp_path / "b").mkdir()
    rc, err = expect_exit(tmp_path / "b", artifact_dir=root, sets=(f"ocr.version={CURRENT}",))
    assert rc != 0 and "ocr.version" in err and "tile_size" in err, err


def test_ocr_disabled_needs_no_ocr_artifact(tmp_path):
    root = copy_repo(tmp_path, with_ocr=False)
    (tmp_path / "run").mkdir()
    s = Server(tmp_path / "run", artifact_dir=root, sets=("ocr.enabled=false",
                                                          "ocr.version=9.9.9"))
    try:
        assert s.json("/versions")["ocr"]["loaded"] is None
    finally:
        s.stop()
