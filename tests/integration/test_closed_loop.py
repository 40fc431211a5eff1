"""The lane-keeping example drives its simulator through the server's /predict."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

CLOSED_LOOP = REPO_ROOT / "examples" / "lane_keeping" / "closed_loop.py"
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


def _run(server, *extra):
    return subprocess.run([PYTHON, str(CLOSED_LOOP), "--url", server.url, "--laps", "2", *extra],
                          capture_output=True, timeout=300, cwd=REPO_ROOT)


def test_closed_loop_two_laps(server):
    before = server.metrics().value("brainstem_requests_total", default=0.0, route="/predict",
                                    status=200)
    result = _run(server, "--version", "0.2.0", "--json")
    assert result.returncode == 0, \
        f"closed_loop.py exited {result.returncode}\nstdout:\n{result.stdout.decode()[-3000:]}" \
        f"\nstderr:\n{result.stderr.decode()[-3000:]}"
    summary = json.loads(result.stdout.decode())
    assert summary["version"] == "0.2.0"
    assert summary["student"]["laps_done"] >= 2
    assert not summary["student"]["off_road"]
    after = server.metrics().value("brainstem_requests_total", route="/predict", status=200)
    assert after - before > 100, "the simulator did not drive through the server"
    server.assert_healthy()


def test_closed_loop_detects_wrong_version(server):
    result = _run(server, "--version", "0.1.0")
    assert result.returncode != 0
    assert b"0.1.0" in result.stderr
