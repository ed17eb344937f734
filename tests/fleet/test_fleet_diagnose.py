"""Diagnosis of the fleet: one module call per host, all hosts at once, one incident for all of them."""

from __future__ import annotations

import json
import os

import pytest
from fleet_helpers import fleet_play
from harness import wait_for

GATHER = "Gather what this host can tell"
# The CPU is the one machine's, shared by all five hosts and whatever else runs here: not under test.
THRESHOLDS = {"cpu_percent": 101}


def diagnose(run_dir, **extra):
    run = fleet_play("diagnose.yml", dict({"diagnose_run_dir": run_dir, "diagnose_thresholds": THRESHOLDS}, **extra))
    with open(os.path.join(run_dir, "diagnosis.json"), encoding="utf-8") as fh:
        return run, json.load(fh)


def flush_app_logs(fleet):
    for host in fleet.groups["app"]:
        fleet.ssh(host, "PM2_HOME=%s %s flush >/dev/null" % (fleet.vars["hb_pm2_home"], fleet.vars["hb_pm2_bin"]))


def pg_ctl(fleet, action):
    # The postmaster must not hold the SSH session's output open: its log goes to a file.
    fleet.ssh("staging-db-1", "cd /tmp && sudo -n -u postgres %s/pg_ctl -D %s -l %s/startup.log -m fast -w -t 60 %s"
              " </dev/null >/dev/null 2>&1" % ("/usr/lib/postgresql/%s/bin" % fleet.vars["hb_pg_version"],
                                               "/var/lib/postgresql/%s/main" % fleet.vars["hb_pg_version"],
                                               fleet.vars["hb_pg_log_dir"], action))


def all_app_hosts(fleet, status):
    return all(fleet.http(h)[0] == status for h in fleet.groups["app"])


def test_one_call_per_host_all_hosts_at_once(fleet, run_dir):
    run, _report = diagnose(run_dir)
    assert run.rc == 0, run.stdout[-3000:]
    gathered = [e for e in run.events if GATHER in e.get("event_data", {}).get("task", "")]
    starts = [e["event_data"]["host"] for e in gathered if e["event"] == "runner_on_start"]
    oks = [e["event_data"]["host"] for e in gathered if e["event"] == "runner_on_ok"]
    # diagnose.yml's default hosts are every group's: app:db:db_standby:cache:backup (six hosts).
    diagnosed = sorted(fleet.hosts)
    assert sorted(oks) == diagnosed and len(oks) == len(set(oks)) == 6
    # Every host's call had started before the first one answered: forks, not one host after another.
    first_ok = next(i for i, e in enumerate(gathered) if e["event"] == "runner_on_ok")
    assert sorted(starts[:first_ok]) == diagnosed


def test_healthy_fleet_has_no_service_finding(fleet, run_dir):
    flush_app_logs(fleet)
    run, diagnosis = diagnose(run_dir, diagnose_fail_on="P2")
    assert run.rc == 0, run.stdout[-3000:]
    facts = diagnosis["facts"]
    assert {h: f["sections"] for h, f in facts.items()} == {
        "staging-app-1": ["host", "app"], "staging-app-2": ["host", "app"], "staging-db-1": ["host", "postgres"],
        "staging-cache-1": ["host", "redis"], "staging-backup-1": ["host", "backups"],
        "staging-db-2": ["host", "replication"]}
    standby = facts["staging-db-2"]["replication"]
    assert (standby["role"], standby["streaming"]) == ("standby", True), standby
    assert standby["lag_bytes"] is not None and standby["lag_s"] is not None
    primary = facts["staging-db-1"]["postgres"]["replication"]
    assert primary["streaming"] == 1 and primary["lag_bytes"] is not None, primary
    for host in fleet.groups["app"]:
        assert facts[host]["app"]["health"]["status"] == 200
    # The only finding a healthy fleet may have is a backup not taken yet (this file alone, on a fresh fleet). The
    # diagnosis reads the backup host's store as its owner: before, it could not, and reported backup_missing
    # while the backup tests' dumps were there.
    dumps = fleet.ssh("staging-backup-1", "sudo -n sh -c 'ls %s/dumps/*.dump 2>/dev/null | wc -l'"
                      % fleet.vars["hb_backup_dir"]).stdout.strip()
    expected = [] if int(dumps) > 0 else [("backup_missing", "staging-backup-1")]
    assert [(f["id"], f["host"]) for f in diagnosis["classification"]["findings"]] == expected


@pytest.fixture
def postgres_stopped(fleet):
    flush_app_logs(fleet)
    pg_ctl(fleet, "stop")
    try:
        wait_for(lambda: all_app_hosts(fleet, 503), timeout=30, what="both app hosts answering 503")
        yield fleet
    finally:
        pg_ctl(fleet, "start")
        wait_for(lambda: all_app_hosts(fleet, 200), timeout=60, what="both app hosts answering 200 again")
        flush_app_logs(fleet)


def test_postgresql_down_on_the_db_host_is_one_p0_scenario_2(postgres_stopped, run_dir):
    fleet = postgres_stopped
    run, diagnosis = diagnose(run_dir)
    assert run.rc == 0, run.stdout[-3000:]
    c = diagnosis["classification"]
    assert c["severity"] == "P0"
    assert c["scenarios"][0] == 2 and c["next_playbook"] == "healthbutler.recovery.recover_db_connection"
    p0 = [(f["id"], f["host"]) for f in c["findings"] if f["severity"] == "P0"]
    assert p0 == [("db_down", "staging-db-1")]
    # Both app hosts saw it from their side (their own /health, over the network to the db host) ...
    app_findings = {f["host"] for f in c["findings"] if f["id"].startswith("app_db")}
    assert app_findings == {"staging-app-1", "staging-app-2"}
    for host in fleet.groups["app"]:
        health = diagnosis["facts"][host]["app"]["health"]
        body = json.loads(health["body"])
        assert health["status"] == 503 and body["failed"] == ["database"]
        assert "ECONNREFUSED %s:5432" % fleet.address("staging-db-1") in body["db"]
    # ... and the console names one incident, with the host of each finding.
    console = run.stdout
    assert console.count("P0 (emergency") == 1
    assert "P0 db_down on staging-db-1:" in console
    fail = fleet_play("diagnose.yml", {"diagnose_run_dir": run_dir + "-fail", "diagnose_fail_on": "P1",
                                       "diagnose_thresholds": THRESHOLDS})
    assert fail.rc != 0 and "P0 is at or above diagnose_fail_on=P1" in fail.stdout
