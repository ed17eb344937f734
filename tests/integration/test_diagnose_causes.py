"""Faults the drill catalogue lacks: the P-level from user impact, the cause line, the playbook or manual fix.

Each test injects a real fault in the sandbox, runs playbooks/diagnose.yml, and asserts what an on-call
engineer reads: the P-level, the cause (its class and the evidence it names) and the suggested fix.
Every run is searched for the sandbox's secrets and for the fake passwords the faults plant.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import cause_helpers as faults
import pytest
from harness import run_playbook

GATHER_TASK = "Gather what this host can tell"


@pytest.fixture(scope="module")
def box(sandbox):
    """A healthy sandbox with a file backup of .env (what the daily backup leaves), removed afterwards."""
    sandbox.ensure_healthy()
    root = os.path.join(sandbox["hb_backup_dir"], "files")
    before = set(os.listdir(root)) if os.path.isdir(root) else set()
    run = run_playbook("backup.yml", {"backup_mode": "files"})
    assert run.rc == 0, run.stdout[-3000:]
    sandbox.flush_app_logs()
    yield sandbox
    for name in set(os.listdir(root)) - before:
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)


@pytest.fixture
def clean(box):
    box.ensure_healthy()
    yield box
    box.ensure_healthy()
    box.flush_app_logs()


def secrets(box):
    return box.secrets() + [faults.FAKE_DB_PASSWORD, faults.FAKE_REDIS_PASSWORD]


def diagnose(box, run_dir):
    """Run diagnose.yml; check nothing secret leaked; return (classification, app facts, markdown, console)."""
    run = run_playbook("diagnose.yml", {"diagnose_run_dir": run_dir, "diagnose_thresholds": {"cpu_percent": 100}})
    assert run.rc == 0, run.stdout[-3000:]
    module_results = run.task_results(GATHER_TASK)
    with open(os.path.join(run_dir, "diagnosis.json"), encoding="utf-8") as fh:
        report = json.load(fh)
    with open(os.path.join(run_dir, "diagnosis.md"), encoding="utf-8") as fh:
        markdown = fh.read()
    everything = "\n".join([json.dumps(module_results), run.stdout, json.dumps(report), markdown])
    leaked = [s[:3] + "..." for s in secrets(box) if s in everything]
    assert not leaked, "secrets leaked: %s" % leaked
    console = " ".join(run.stdout.replace("''", "'").split())  # the YAML callback wraps and quotes
    return report["classification"], report["facts"]["localhost"]["app"], markdown, console


def test_wrong_db_password_in_env(clean, run_dir):
    """A deploy left a wrong password in DATABASE_URL: P0, the changed key named, restore-files fixes it."""
    box = clean
    pg_pid = box.pg_pid()
    with faults.wrong_db_password_in_env(box):
        c, app, markdown, console = diagnose(box, run_dir)
        assert c["severity"] == "P0", (c["impact"], c["findings"])
        assert c["impact"]["health_status"] == 503 and c["impact"]["read"] is False
        cause = c["cause"]
        assert cause["id"] == "config_changed", cause
        assert "DATABASE_URL (password part differs)" in cause["line"]
        assert cause["evidence"]["env_backup"]["mtime"] in cause["line"]
        assert "authentication fails" in cause["line"] and cause["playbook"] == "healthbutler.recovery.restore_files"
        assert c["next_playbook"] == "healthbutler.recovery.restore_files"
        assert "next: healthbutler.recovery.restore_files" in console and "cause: The app's .env" in console
        assert [o["id"] for o in c["causes"]] == ["credentials"]  # the mechanism, ranked second
        # The log summary: identical lines counted once each.
        summary = app["error_log"]["summary"]
        assert summary["distinct"] < summary["lines"], summary
        assert any("password authentication failed" in m["message"] and m["count"] >= 1 for m in summary["messages"])

        # The wrong fix refuses early: PostgreSQL untouched, the app not restarted, the cause named.
        restarts = box.pm2_process()["pm2_env"]["restart_time"]
        started = time.monotonic()
        refused = run_playbook("recover-db-connection.yml")
        took = time.monotonic() - started
        assert refused.rc != 0
        assert "recover-db-connection stops before changing anything" in refused.stdout, refused.stdout[-3000:]
        assert "DATABASE_URL (password part differs)" in refused.stdout
        assert "healthbutler.recovery.restore_files" in refused.stdout
        assert box.pg_pid() == pg_pid and box.pm2_process()["pm2_env"]["restart_time"] == restarts
        assert not [s for s in secrets(box) if s in refused.stdout]
        print("recover-db-connection refused in %.1f s" % took)

        # The suggested fix works.
        fixed = run_playbook("restore-files.yml", {"files_restore_uploads": False})
        assert fixed.rc == 0, fixed.stdout[-3000:]
        assert box.http("/health")[0] == 200


def test_port_held_by_another_process(clean, run_dir):
    """EADDRINUSE crash loop: P0, the holder's pid and command named, the fix is to stop it (not restart-app)."""
    box = clean
    with faults.port_held(box) as holder_pid:
        c, app, _markdown, console = diagnose(box, run_dir)
        restarts = box.pm2_process()["pm2_env"]["restart_time"]
        refused = run_playbook("restart-app.yml")
        assert refused.rc != 0 and "restart-app stops before changing anything" in refused.stdout, \
            refused.stdout[-3000:]
        assert "pid %s" % holder_pid in refused.stdout
        assert not [s for s in secrets(box) if s in refused.stdout]
        assert box.pm2_process()["pm2_env"]["restart_time"] == restarts  # not restarted into the same wall
    assert c["severity"] == "P0"
    cause = c["cause"]
    assert cause["id"] == "port_held", cause
    assert "pid %s" % holder_pid in cause["line"] and "http.server" in cause["line"]
    assert "EADDRINUSE" in cause["line"]
    assert cause["playbook"] is None and "kill %s" % holder_pid in cause["manual"]
    assert c["next_playbook"] is None and "kill %s" % holder_pid in c["next_step"]
    assert "kill %s" % holder_pid in console
    # One line per distinct error, with counts: the crash loop wrote the same EADDRINUSE many times.
    messages = app["error_log"]["summary"]["messages"]
    eaddrinuse = [m for m in messages if "eaddrinuse" in m["signatures"]]
    assert eaddrinuse and eaddrinuse[0]["count"] >= 2, messages
    assert eaddrinuse[0]["first"] and eaddrinuse[0]["last"] and eaddrinuse[0]["first"] <= eaddrinuse[0]["last"]
    assert len({m["message"] for m in messages}) == len(messages)


def test_server_wide_read_only(clean, run_dir):
    """default_transaction_read_only = on for the whole server: /health stays 200, every write fails: P1."""
    box = clean
    with faults.server_read_only(box):
        c, _app, _markdown, _console = diagnose(box, run_dir)
    assert c["severity"] == "P1" and c["impact"]["health_status"] == 200
    assert c["impact"]["read"] is True and c["impact"]["write"] is False
    assert "users_write_failing" in [f["id"] for f in c["findings"]]
    cause = c["cause"]
    assert cause["id"] == "db_refuses_writes", cause
    assert "server-wide" in cause["line"] and "read-only transaction" in cause["line"]
    assert "ALTER SYSTEM RESET default_transaction_read_only" in cause["manual"]


def test_read_only_for_the_app_role(clean, run_dir):
    """ALTER ROLE ... SET default_transaction_read_only: only the app's sessions are read-only: P1."""
    box = clean
    with faults.role_read_only(box):
        c, _app, _markdown, _console = diagnose(box, run_dir)
    assert c["severity"] == "P1" and c["impact"]["write"] is False
    cause = c["cause"]
    assert cause["id"] == "db_refuses_writes", cause
    assert "for the app's role %s" % box["hb_db_app_user"] in cause["line"]


def test_role_password_changed_on_the_server(clean, run_dir):
    """The .env is as backed up, but the role's password changed: credentials, with the monitoring role's view."""
    box = clean
    with faults.role_password_changed(box):
        c, _app, _markdown, _console = diagnose(box, run_dir)
    assert c["severity"] == "P0", (c["impact"], c["findings"])
    cause = c["cause"]
    assert cause["id"] == "credentials", cause
    assert "fails to authenticate" in cause["line"] and "the monitoring role connects" in cause["line"]
    assert "ALTER ROLE %s PASSWORD" % box["hb_db_app_user"] in cause["manual"]


def test_db_host_name_not_found(clean, run_dir):
    """DATABASE_URL names a host that does not resolve: the changed host named, from which host to which."""
    box = clean
    with faults.db_host_not_found_in_env(box):
        c, _app, _markdown, _console = diagnose(box, run_dir)
    assert c["severity"] == "P0"
    cause = c["cause"]
    assert cause["id"] == "config_changed", cause
    assert "DATABASE_URL (host part differs)" in cause["line"]
    assert "%s:%s: the host name is not found" % (faults.BAD_DB_HOST, box["hb_pg_port"]) in cause["line"]
    assert c["next_playbook"] == "healthbutler.recovery.restore_files"


def test_wrong_redis_password_in_env(clean, run_dir):
    """REDIS_URL with a wrong password: /health 503 but the database works: P1, REDIS_URL named."""
    box = clean
    with faults.wrong_redis_password_in_env(box):
        c, _app, _markdown, _console = diagnose(box, run_dir)
    assert c["severity"] == "P1" and c["impact"]["read"] is True and c["impact"]["write"] is True
    cause = c["cause"]
    assert cause["id"] == "config_changed", cause
    assert "REDIS_URL (password part differs)" in cause["line"] and "authentication fails" in cause["line"]
    assert c["next_playbook"] == "healthbutler.recovery.restore_files"


def test_redis_unreachable_from_the_app(clean, run_dir):
    """Redis stopped: which host cannot reach which, and Redis' own PING confirms it is down."""
    box = clean
    with faults.redis_stopped(box):
        c, _app, _markdown, _console = diagnose(box, run_dir)
    assert c["severity"] == "P1"
    cause = c["cause"]
    assert cause["id"] == "dependency_unreachable", cause
    assert "From localhost the app cannot reach Redis at 127.0.0.1:%s" % box["hb_redis_port"] in cause["line"]
    assert "connection is refused" in cause["line"] and "does not answer PING" in cause["line"]
    assert "start Redis" in cause["manual"]
