"""Integration fixtures: a real sandbox staging, brought up once per session.

Tests drive real playbooks (harness.run_playbook) and inject real faults.
Set HB_KEEP_SANDBOX=1 to leave the sandbox running after the session. Under pytest-xdist
every worker has a sandbox of its own (see harness.isolate_xdist_worker).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from harness import Sandbox, isolate_xdist_worker, resolve_site, run_playbook

isolate_xdist_worker()


@pytest.fixture(scope="session")
def sandbox():
    """The sandbox staging, up for the whole session (torn down at the end)."""
    up = run_playbook("sandbox.yml", {"sandbox_state": "present"})
    assert up.rc == 0, up.stdout[-5000:]
    box = Sandbox(resolve_site())
    box.wait_health(200)
    yield box
    if os.environ.get("HB_KEEP_SANDBOX") != "1":
        down = run_playbook("sandbox.yml", {"sandbox_state": "absent"})
        assert down.rc == 0, down.stdout[-3000:]


@pytest.fixture
def healthy(sandbox):
    """A sandbox that answers /health 200 before and (best effort) after the test, its app logs emptied after."""
    sandbox.ensure_healthy()
    yield sandbox
    sandbox.ensure_healthy()
    sandbox.flush_app_logs()


@pytest.fixture
def run_dir():
    path = tempfile.mkdtemp(prefix="hb-run-")
    yield path
    shutil.rmtree(path, ignore_errors=True)
