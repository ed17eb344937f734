"""Standby, failover_db, rejoin_db and the db_host_lost drill on the real sandbox (primary + streaming standby).

One drill does the expensive part once: the primary is killed (-9) with the writer running, failover_db promotes
the standby and moves the app onto it, and the rollback rejoins, switches back and rejoins again. The tests read
what that left: the drill's journal, the failover record, the rows, both servers' replication state.
"""

from __future__ import annotations

import glob
import json
import os
import time

import pytest
from drill_helpers import load_journal
from harness import run_playbook, wait_for


def standby_psql(sandbox, sql):
    return sandbox.standby_psql(sql)


def replication(sandbox):
    """(primary in recovery?, standbys streaming from it, standby in recovery?, its receiver status)."""
    primary = sandbox.psql("SELECT pg_is_in_recovery() || ',' || (SELECT count(*) FROM pg_stat_replication "
                           "WHERE state = 'streaming')", db="postgres").split(",")
    standby = standby_psql(sandbox, "SELECT pg_is_in_recovery() || ',' || coalesce((SELECT status FROM "
                                    "pg_stat_wal_receiver), 'none')").split(",")
    return primary[0] == "true", int(primary[1]), standby[0] == "true", standby[1]


def streaming_again(sandbox):
    """Wait for the standby to stream: after a restart of the primary (a rolled-back PITR of an earlier test) its
    receiver reconnects within wal_retrieve_retry_interval (5 s)."""
    wait_for(lambda: replication(sandbox) == (False, 1, True, "streaming"), timeout=60,
             what="the standby streaming from the primary")


def test_sandbox_has_a_streaming_standby(sandbox):
    streaming_again(sandbox)
    row = sandbox.psql("INSERT INTO health_data (user_id, metric, value) VALUES (1, 'standby_probe', 1) RETURNING id")
    deadline = time.monotonic() + 30
    while standby_psql(sandbox, "\\c %s\nSELECT count(*) FROM health_data WHERE id = %s" % (
            sandbox["hb_db_name"], row)) != "1":
        assert time.monotonic() < deadline, "the row never reached the standby"
        time.sleep(0.5)


def test_unreachable_primary_is_refused_without_confirm(sandbox):
    before = replication(sandbox)
    env_before = sandbox.env_file()["DATABASE_URL"]
    run = run_playbook("failover_db.yml", {"primary_unreachable": True})
    assert run.rc != 0
    assert "re-run with -e primary_unreachable=true -e confirm=localhost" in run.stdout.replace("\n", " ").replace(
        "  ", " ") or "confirm=localhost" in run.stdout
    assert "Nothing was changed" in run.stdout
    assert replication(sandbox) == before and sandbox.env_file()["DATABASE_URL"] == env_before


def test_check_mode_shows_the_plan_and_changes_nothing(sandbox):
    def state():
        return (replication(sandbox), sandbox.env_file()["DATABASE_URL"], sandbox.pm2_process()["pid"],
                sandbox.psql("SELECT pg_postmaster_start_time()"),
                sorted(glob.glob(sandbox["hb_app_env_file"] + ".pre_failover_*")))

    before = state()
    run = run_playbook("failover_db.yml", {}, check=True)
    assert run.rc == 0, run.stdout[-3000:]
    assert "a run promotes sandbox-standby" in run.stdout and "DATABASE_URL: 127.0.0.1:" in run.stdout
    assert state() == before


@pytest.fixture(scope="module")
def host_lost(sandbox):
    sandbox.ensure_healthy()
    streaming_again(sandbox)
    sandbox.flush_app_logs()
    run_dir = os.path.join(sandbox["hb_run_root"], "test-db_host_lost-%d" % time.time())
    os.makedirs(run_dir)
    started = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    timeline_before = int(sandbox.psql("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)", db="postgres"),
                          16)
    run = run_playbook("drill.yml", {"drill_scenarios": ["db_host_lost"], "drill_run_dir": run_dir,
                                     "drill_detect_attempts": 3},
                       envvars={"HB_RUN_DIR": run_dir})
    records = sorted(p for p in glob.glob(os.path.join(sandbox["hb_run_root"], "failover_db-*", "failover.json"))
                     if os.path.basename(os.path.dirname(p))[len("failover_db-"):] >= started)
    journal = load_journal(run_dir)
    sandbox.ensure_healthy()
    return run, run_dir, journal["scenarios"][0], [json.load(open(p, encoding="utf-8")) for p in records], \
        timeline_before


def test_db_host_lost_drill_passes(host_lost):
    run, _run_dir, scenario, _records, _tl = host_lost
    assert scenario["status"] == "passed", (scenario["deviations"], run.stdout[-3000:])
    assert run.rc == 0
    assert scenario["effect"]["seen"] and "no response" in scenario["effect"]["observation"]
    assert scenario["rto_s"] is not None and scenario["rto_s"] > 0
    facts = scenario.get("facts") or {}
    assert "lag_bytes_at_kill" in facts and facts["standbys_streaming_at_kill"] == 1, facts
    # acknowledged writes lost are measured and set against the replication window at the kill (asynchronous
    # replication: a write the primary acknowledged and had not sent yet dies with it); none lost outside it
    window = scenario["rpo"]["replication_window"]
    assert window["explained"], (scenario["rpo"], facts)
    assert window["lost_writes"] == scenario["rpo"]["lost_writes"] and window["lag_bytes_at_kill"] is not None


def test_failover_moved_the_writing_app_to_the_promoted_standby(host_lost, sandbox):
    _run, _run_dir, _scenario, records, timeline_before = host_lost
    first = records[0]  # the recovery; the next one is the rollback's switch back
    standby_port = int(sandbox["hb_pg_port"]) + 2000
    assert (first["primary"], first["standby"]) == ("localhost", "sandbox-standby")
    assert first["app_hosts"] == {"localhost": "127.0.0.1:%d" % standby_port}
    # a new timeline; +1 unless an earlier, rolled-back PITR left a higher timeline's history file in the archive
    assert first["timeline"] > timeline_before
    assert first["rpo"]["measured"] and first["rpo"]["bytes"] is not None and first["writes_verified"] == 1
    kept = glob.glob(sandbox["hb_app_env_file"] + ".pre_failover_*")
    assert kept, "the previous .env was not kept"
    # the app wrote to the promoted server: its proving rows exist, and came back with the switch back
    assert int(sandbox.scalar("SELECT count(*) FROM health_data WHERE metric = 'failover_check'")) >= 2


def test_rollback_left_a_streaming_standby_and_the_original_primary(host_lost, sandbox):
    _run, _run_dir, _scenario, records, timeline_before = host_lost
    assert [(r["primary"], r["standby"]) for r in records[:2]] == [("localhost", "sandbox-standby"),
                                                                   ("sandbox-standby", "localhost")]
    assert replication(sandbox) == (False, 1, True, "streaming")
    assert sandbox.env_file()["DATABASE_URL"].endswith(":%s/%s" % (sandbox["hb_pg_port"], sandbox["hb_db_name"]))
    rejoins = sorted(glob.glob(os.path.join(sandbox["hb_run_root"], "rejoin_db-*", "rejoin.json")))[-2:]
    for path in rejoins:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
        assert record["method"] == "rewind" and os.path.isdir(record["preserved"]), record
        assert "receiver streaming" in record["after"]
    assert sandbox.http("/api/health-data", "POST", {"user_id": 1, "metric": "after_drill", "value": 1})[0] == 201
