"""Helpers for the tests that kill a playbook's controller mid-run, as an SSH drop does, and read its journal."""

from __future__ import annotations

import json
import os
import signal
import subprocess

from harness import ROOT, wait_for


def read_json(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):  # absent, or being replaced
        return None


def lock(lock_dir, kind):
    return read_json(os.path.join(lock_dir, "%s.lock" % kind))


def journal(lock_dir, kind):
    """The run record of the run holding ``kind``'s lock, or None."""
    held = lock(lock_dir, kind)
    return read_json(os.path.join(held["run_dir"], "run.json")) if held else None


def steps(lock_dir, kind):
    return [s["name"] for s in (journal(lock_dir, kind) or {}).get("steps", [])]


def start(playbook, extravars=None):
    """ansible-playbook in a session of its own (so it can be killed with its workers, as a hang-up does)."""
    argv = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", "sandbox"),
            os.path.join(ROOT, "playbooks", playbook), "-e", json.dumps(extravars or {})]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def killed_at(playbook, extravars, lock_dir, kind, step, timeout=120):
    """Start ``playbook`` and SIGKILL its controller (the whole session) once its journal has ``step``.

    Returns the interrupted run's record, which must still be open.
    """
    proc = start(playbook, extravars)
    try:
        wait_for(lambda: step in steps(lock_dir, kind) or proc.poll() is not None, timeout=timeout, interval=0.05,
                 what="journal step %s" % step)
        assert proc.poll() is None, "the run ended before step %s could be interrupted:\n%s" % (
            step, proc.communicate()[0][-3000:])
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    record = journal(lock_dir, kind)
    assert record and record["state"] == "running", "no interrupted %s run journalled" % kind
    return record
