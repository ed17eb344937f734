"""Fleet fixtures: the local staging fleet (make staging), brought up once per session and down after.

Set HB_KEEP_STAGING=1 to leave it running after the session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest
from fleet_helpers import Fleet, staging_play


@pytest.fixture(scope="session")
def fleet():
    up = staging_play("present")
    assert up.rc == 0, up.stdout[-5000:]
    yield Fleet()
    if os.environ.get("HB_KEEP_STAGING") != "1":
        down = staging_play("absent")
        assert down.rc == 0, down.stdout[-3000:]
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        prefix = os.environ.get("HB_STAGING_PREFIX") or "hbst"
        assert prefix + "-" not in left, left


@pytest.fixture
def run_dir():
    path = tempfile.mkdtemp(prefix="hb-fleet-run-")
    yield path
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(path + "-fail", ignore_errors=True)
