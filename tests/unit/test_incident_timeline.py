"""incident_timeline callback: real ansible-playbook runs on localhost (no services), plus its helpers."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.healthbutler.recovery.plugins.callback import incident_timeline as tl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = "s3cr3t-Value-4711"

PLAYBOOK = """
- name: Timeline probe
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Plain task
      ansible.builtin.debug: {msg: hello}
    - name: Changing task
      ansible.builtin.debug: {msg: change}
      changed_when: true
      notify: Handle it
    - name: Hidden task
      ansible.builtin.fail: {msg: "token is %(secret)s"}
      no_log: true
      ignore_errors: true
    - name: Visible failure
      ansible.builtin.fail: {msg: "postgres://app:%(secret)s@db/x API_KEY=%(secret)s"}
      ignore_errors: true
    - name: Skipped task
      ansible.builtin.debug: {msg: never}
      when: false
    - name: Role-less failure
      ansible.builtin.fail: {msg: boom}
  handlers:
    - name: Handle it
      ansible.builtin.debug: {msg: handled}
""" % {"secret": SECRET}


def _env(run_dir):
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), HB_RUN_DIR=str(run_dir),
                ANSIBLE_NOCOLOR="1", PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])


def _argv(playbook):
    return ["ansible-playbook", "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook)]


def _lines(run_dir):
    with open(os.path.join(run_dir, "timeline.jsonl"), encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("timeline")
    (tmp / "probe.yml").write_text(PLAYBOOK)
    proc = subprocess.run(_argv(tmp / "probe.yml"), env=_env(tmp / "run"), capture_output=True, text=True,
                          check=False, timeout=120)
    return proc, tmp / "run"


def test_one_line_per_task_and_handler_with_status(finished_run):
    proc, run_dir = finished_run
    assert proc.returncode == 2, proc.stdout
    tasks = {r["task"]: r for r in _lines(run_dir) if r["event"] == "task"}
    assert {n: r["status"] for n, r in tasks.items()} == {
        "Plain task": "ok", "Changing task": "changed", "Hidden task": "ignored",
        "Visible failure": "ignored", "Skipped task": "skipped", "Role-less failure": "failed"}
    # the handler is never reached: the play failed before handlers ran
    assert all(r["host"] == "localhost" and r["duration"] >= 0 and r["start"] <= r["end"] for r in tasks.values())
    assert tasks["Changing task"]["changed"] is True


def test_run_end_reports_failure_with_stats(finished_run):
    _unused, run_dir = finished_run
    end = _lines(run_dir)[-1]
    assert end["event"] == "run_end" and end["status"] == "failed"
    assert end["hosts"]["localhost"]["failures"] == 1


def test_no_log_and_secrets_never_written(finished_run):
    _unused, run_dir = finished_run
    text = (run_dir / "timeline.jsonl").read_text()
    assert SECRET not in text
    hidden = next(r for r in _lines(run_dir) if r.get("task") == "Hidden task")
    assert hidden["no_log"] is True and "msg" not in hidden
    visible = next(r for r in _lines(run_dir) if r.get("task") == "Visible failure")
    assert visible["msg"] == "postgres://app:***@db/x API_KEY=***"


def test_handler_is_flagged(tmp_path):
    head = PLAYBOOK.split("    - name: Hidden task", maxsplit=1)[0]
    handlers = "  handlers:" + PLAYBOOK.split("  handlers:", maxsplit=1)[1]
    (tmp_path / "h.yml").write_text(head + handlers)
    proc = subprocess.run(_argv(tmp_path / "h.yml"), env=_env(tmp_path / "run"), capture_output=True, text=True,
                          check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout
    handler = [r for r in _lines(tmp_path / "run") if r.get("handler")]
    assert [r["task"] for r in handler] == ["Handle it"]
    assert _lines(tmp_path / "run")[-1]["status"] == "ok"


def test_interrupted_run_keeps_its_timeline(tmp_path):
    (tmp_path / "slow.yml").write_text(
        "- name: Slow\n  hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: Quick\n      ansible.builtin.debug: {msg: hi}\n"
        "    - name: Wait long\n      ansible.builtin.wait_for: {timeout: 120}\n")
    proc = subprocess.Popen(_argv(tmp_path / "slow.yml"), env=_env(tmp_path / "run"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    path = tmp_path / "run" / "timeline.jsonl"
    while time.monotonic() < deadline and not (path.exists() and '"Quick"' in path.read_text()):
        time.sleep(0.2)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) != 0
    lines = _lines(tmp_path / "run")
    assert lines[-1]["event"] == "run_end" and lines[-1]["status"] == "interrupted"
    assert {"task": "Wait long", "status": "interrupted"}.items() <= lines[-2].items()


@pytest.mark.parametrize("text, expected", [
    ("redis://:pw@h:1/0 fine", "redis://:***@h:1/0 fine"),
    ("JWT_SECRET=abc next", "JWT_SECRET=*** next"),
    ("password: hunter2", "password: ***"),
    ("nothing here", "nothing here"),
])
def test_mask_message(text, expected):
    assert tl.mask_message(text) == expected


def test_mask_message_shortens():
    assert len(tl.mask_message("x" * 2000)) == tl.MESSAGE_LIMIT + 3


@pytest.mark.parametrize("kind, changed, ignore, expected", [
    ("ok", False, False, "ok"), ("ok", True, False, "changed"), ("failed", False, False, "failed"),
    ("failed", False, True, "ignored"), ("skipped", False, False, "skipped"),
    ("unreachable", False, False, "unreachable"),
])
def test_task_status(kind, changed, ignore, expected):
    assert tl.task_status(kind, {"changed": changed}, ignore) == expected


def test_default_run_root_never_creates_sandbox(tmp_path):
    cfg = tmp_path / "ansible.cfg"
    assert tl.default_run_root(str(cfg)) == str(tmp_path / ".ansible" / "runs")
    (tmp_path / ".sandbox").mkdir()
    assert tl.default_run_root(str(cfg)) == str(tmp_path / ".sandbox" / "runs")
    assert tl.default_run_root(str(cfg), sandbox_dir="/srv/sb") == "/srv/sb/runs"


def test_new_run_dir_name():
    assert tl.new_run_dir_name("playbooks/recover-db.yml", now=0) == "19700101T000000Z-recover-db"
    assert tl.new_run_dir_name(None, now=0) == "19700101T000000Z-adhoc"
