"""playbooks/diagnose.yml on the real sandbox: healthy, then eight real faults, each classified.

Every run is also searched for the sandbox's literal secrets (module result, console, both reports).
"""

from __future__ import annotations

import json
import os

import diagnose_helpers as faults
import pytest
from harness import run_playbook

GATHER_TASK = "Gather what this host can tell"


@pytest.fixture(scope="module")
def box(sandbox):
    sandbox.ensure_healthy()
    made = faults.ensure_backup(sandbox)  # a staging that follows the backup policy has a recent dump
    sandbox.flush_app_logs()  # traces of earlier faults
    yield sandbox
    if made:  # leave the backup directory as we found it (other areas count its files)
        os.remove(made)


def diagnose(box, run_dir, expect_rc=0, **extravars):
    """Run the playbook; check no secret leaked anywhere; return (classification, facts, markdown, console)."""
    run = run_playbook("diagnose.yml", dict({"diagnose_run_dir": run_dir}, **extravars))
    assert (run.rc == 0) == (expect_rc == 0), run.stdout[-3000:]
    module_results = run.task_results(GATHER_TASK)
    # one module call per host: localhost (every group but the standby) and sandbox-standby (its replication view)
    assert sorted(r["facts"]["sections"] == ["host", "replication"] for r in module_results) == [False, True]
    report, markdown = faults.read_reports(run_dir)
    everything = "\n".join([json.dumps(module_results), run.stdout, json.dumps(report), markdown])
    leaked = [s[:3] + "..." for s in box.secrets() if s in everything]
    assert not leaked, "secrets leaked: %s" % leaked
    return report["classification"], report["facts"]["localhost"], markdown, run.stdout


def finding(classification, fid):
    found = [f for f in classification["findings"] if f["id"] == fid]
    assert found, "no %s in %s" % (fid, [(f["id"], f["summary"]) for f in classification["findings"]])
    return found[0]


def assert_classified(classification, severity, scenario, *finding_ids):
    assert classification["healthy"] is False
    assert classification["severity"] == severity, classification["findings"]
    assert classification["scenarios"][0] == scenario, classification["findings"]
    for fid in finding_ids:
        finding(classification, fid)


def test_healthy_sandbox_has_no_p_level(box, run_dir):
    # The machine is shared by several sandboxes: its CPU use says nothing about this one.
    classification, facts, markdown, console = diagnose(box, run_dir, diagnose_thresholds={"cpu_percent": 100})
    assert classification["healthy"] is True, classification["findings"]
    assert classification["severity"] is None and classification["findings"] == []
    assert facts["sections"] == ["host", "app", "postgres", "redis", "backups"]
    assert facts["app"]["process"]["status"] == "online" and "pm2_env" not in json.dumps(facts)
    assert facts["postgres"]["statements"]["mean_column"] == "mean_exec_time"
    env_keys = {k["key"]: k for k in facts["app"]["env"]["keys"]}
    assert env_keys["JWT_SECRET"] == {"key": "JWT_SECRET", "set": True, "value": "********"}
    assert "Healthy" in markdown and "healthy: no finding" in console


def test_slow_statement_and_lock_blocking_app_writes(box, run_dir):
    """场景4, two faults in one pass: a recurring slow statement and a write waiting on a lock."""
    with faults.slow_statement(box), faults.lock_blocking_writes(box) as lock:
        classification, _facts, markdown, _console = diagnose(box, run_dir)
    assert_classified(classification, "P2", 4, "db_locks_waiting", "db_slow_statements")
    assert finding(classification, "db_slow_statements")["severity"] == "P3"
    slow = finding(classification, "db_slow_statements")["evidence"]["statements"][0]
    assert "pg_sleep" in slow["query"] and slow["calls"] >= 3 and slow["mean_ms"] > 2000
    chain = finding(classification, "db_locks_waiting")["evidence"]["lock_chains"][0]
    assert chain["blocker"]["pid"] == lock["blocker_pid"] and chain["blocked_pids"]
    assert "INSERT INTO health_data" in json.dumps(finding(classification, "db_locks_waiting")["evidence"])
    assert str(lock["blocker_pid"]) in markdown and "pg_sleep" in markdown
    assert classification["next_playbook"] == "healthbutler.recovery.triage_performance"
    assert lock["post"][0] == 201  # the blocked write went through once the lock was released


def test_connections_exhausted(box, run_dir):
    with faults.connections_exhausted(box) as opened:
        classification, _facts, markdown, _console = diagnose(box, run_dir)
    assert opened >= 20
    assert_classified(classification, "P1", 2, "db_connections_exhausted")  # the probe's own slot: busy, not P0
    evidence = finding(classification, "db_connections_exhausted")["evidence"]
    # Either the monitoring role was refused, or it got the one slot an app connection just freed.
    assert (evidence.get("refusal") == "too_many_connections" and "connection slots" in evidence["query_error"]
            or evidence.get("connections_used_percent", 0) >= 100), evidence
    assert classification["next_playbook"] == "healthbutler.recovery.recover_db_connection"
    assert "db_connections_exhausted" in markdown


def test_app_stopped_in_pm2(box, run_dir):
    with faults.app_stopped(box):
        classification, _facts, markdown, console = diagnose(box, run_dir, diagnose_elapsed_minutes=20)
    assert_classified(classification, "P0", 1, "app_stopped", "app_port_not_listening", "app_unreachable")
    assert finding(classification, "app_stopped")["evidence"]["pid"] == 0
    assert classification["targets"]["resolution"] == "< 1 hour"
    assert classification["escalation"]["role"] == "team lead" and "CTO" in classification["escalation"]["notify"]
    assert "next: healthbutler.recovery.restart_app" in console and "app_stopped" in markdown


def test_crash_loop(box, run_dir):
    with faults.crash_loop(box):
        classification, _facts, _markdown, _console = diagnose(box, run_dir)
    assert_classified(classification, "P0", 1, "app_errored")
    evidence = finding(classification, "app_errored")["evidence"]
    assert evidence["exit_code"] == 1 and evidence["gave_up"] is True
    # No known cause: said so, with the crash's own message (counted once per restart), no guess.
    cause = classification["cause"]
    assert cause["id"] == "unknown" and cause["line"].startswith("cause unknown: ")
    assert "injected by the diagnose test: crash at start-up" in cause["line"], cause
    assert classification["next_playbook"] == "healthbutler.recovery.restart_app"


def test_heap_out_of_memory(box, run_dir):
    with faults.heap_oom(box):
        classification, facts, markdown, _console = diagnose(box, run_dir)
    assert_classified(classification, "P1", 3, "app_heap_oom")
    assert facts["app"]["error_log"]["signatures"]["heap_out_of_memory"] >= 1
    assert classification["next_playbook"] == "healthbutler.recovery.recover_memory"
    assert "heap out of memory" in markdown


def test_redis_down(box, run_dir):
    with faults.redis_down(box):
        classification, _facts, _markdown, _console = diagnose(box, run_dir)
    assert_classified(classification, "P1", 1, "redis_down", "app_http_errors")
    assert "redis" in finding(classification, "app_http_errors")["summary"]


def test_postgres_stopped_fails_the_play_with_fail_on(box, run_dir):
    with faults.postgres_stopped(box):
        classification, facts, markdown, console = diagnose(box, run_dir, expect_rc=2, diagnose_fail_on="P1")
    assert_classified(classification, "P0", 2, "db_down", "app_db_errors_logged")
    assert facts["postgres"]["pg_isready"] == "no_response"
    assert "database" in finding(classification, "app_db_errors_logged")["summary"]
    assert "db_down" in markdown
    assert "P0 is at or above diagnose_fail_on=P1" in console
    cause = classification["cause"]  # from which host to which, and the server's own silence
    assert cause["id"] == "dependency_unreachable" and "does not answer pg_isready" in cause["line"], cause
    assert classification["next_playbook"] == "healthbutler.recovery.recover_db_connection"
