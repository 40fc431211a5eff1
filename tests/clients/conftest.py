"""Fixtures of the client integration tests (harness.py does the work)."""

import pytest

from harness import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("srv")
    s = Server(workdir, workdir / "s.sock")
    yield s
    rc = s.stop()
    assert rc == 0, f"brainstem exit code {rc}\n{s.stderr()}"
