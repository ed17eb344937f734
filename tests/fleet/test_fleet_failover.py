"""The db_host_lost drill across the fleet: staging-db-1 killed (-9), staging-db-2 promoted, both app hosts moved.

One drill run (the expensive part: a failover, then the rollback's rejoin, switch back and rejoin again, all over
SSH and the network): the primary's processes are killed with the writer running through both app hosts;
failover_db fences staging-db-1 over SSH, promotes the streaming standby on staging-db-2, points each app host's
DATABASE_URL at staging-db-2's address and restarts them; the rollback rejoins staging-db-1 with pg_rewind over the
network, switches back and rejoins staging-db-2. The test reads what a user cares about where it happened: the
journal and records, both servers' replication state, each app host's .env and a write through each.
"""

from __future__ import annotations

import json
import os
import time

from fleet_helpers import STAGING_DIR, fleet_play
from harness import wait_for

APPS = ("staging-app-1", "staging-app-2")
PRIMARY, STANDBY = "staging-db-1", "staging-db-2"


def psql(fleet, host, sql, db="postgres"):
    """SQL as postgres on ``host`` over its own socket (sudo over SSH); the SQL goes by stdin."""
    cmd = "sudo -n -u postgres /usr/lib/postgresql/%s/bin/psql -X -A -t -q -v ON_ERROR_STOP=1 -h %s -p %s -d %s" % (
        fleet.vars["hb_pg_version"], fleet.vars["hb_pg_socket_dir"], fleet.vars["hb_pg_port"], db)
    return fleet.ssh(host, cmd, stdin=sql).stdout.strip()


def replication(fleet, host):
    """(in recovery?, addresses streaming from it, receiver status, the address it streams from) of ``host``."""
    row = json.loads(psql(fleet, host, "SELECT json_build_object("
                                       "'recovery', pg_is_in_recovery(),"
                                       "'senders', (SELECT coalesce(json_agg(host(client_addr) ORDER BY client_addr), "
                                       "'[]') FROM pg_stat_replication WHERE state = 'streaming'),"
                                       "'receiver', (SELECT status FROM pg_stat_wal_receiver),"
                                       "'upstream', (SELECT sender_host FROM pg_stat_wal_receiver))"))
    return row["recovery"], row["senders"], row["receiver"], row["upstream"]


def records(fleet, host, pattern):
    """The JSON records ``hb_run_root/<pattern>`` on ``host`` (sudo), oldest first."""
    out = fleet.ssh(host, "for f in $(sudo -n sh -c 'ls -d %s/%s' 2>/dev/null | sort); do sudo -n cat \"$f\"; "
                          "echo; echo '\x1e'; done" % (fleet.vars["hb_run_root"], pattern)).stdout
    return [json.loads(part) for part in out.split("\x1e") if part.strip()]


def env_file(fleet):
    """The app's .env on an app host (the inventory names it by a template of hb_app_dir)."""
    return fleet.vars["hb_app_env_file"].replace("{{ hb_app_dir }}", fleet.vars["hb_app_dir"])


def env_points_at(fleet, app, address, path=None):
    """Whether DATABASE_URL in ``path`` (default: the app's .env) on ``app`` names ``address``:5432 (read by grep
    on the host, so that no secret of the .env leaves it)."""
    path = path or env_file(fleet)
    proc = fleet.ssh(app, "sudo -n grep -c '^DATABASE_URL=.*@%s:%s/' %s" % (address, fleet.vars["hb_pg_port"], path),
                     check=False)
    return proc.stdout.strip() == "1"


def test_db_host_lost_drill_fails_over_to_db_2_and_back(fleet, run_dir):
    for app in APPS:  # traces of earlier tests' faults in the app's error log would be residue to the drill
        fleet.ssh(app, "PM2_HOME=%s %s flush >/dev/null" % (fleet.vars["hb_pm2_home"], fleet.vars["hb_pm2_bin"]))
    # An earlier test may have restarted db-1: the standby's receiver retries every 5 s (wal_retrieve_retry_interval).
    wait_for(lambda: replication(fleet, PRIMARY) == (False, [fleet.address(STANDBY)], None, None), timeout=60,
             what="staging-db-2 streaming from staging-db-1")
    assert replication(fleet, STANDBY)[2:] == ("streaming", fleet.address(PRIMARY))
    timeline_before = int(psql(fleet, PRIMARY, "SELECT timeline_id FROM pg_control_checkpoint()"))
    failover_check_before = int(psql(fleet, PRIMARY, "SELECT count(*) FROM health_data WHERE metric = "
                                                     "'failover_check'", db=fleet.vars["hb_db_name"]))
    failovers_before = {h: len(records(fleet, h, "failover_db-*/failover.json")) for h in (PRIMARY, STANDBY)}

    drill_dir = os.path.join(run_dir, "drill")
    started = time.monotonic()
    res = fleet_play("drill.yml", {"drill_scenarios": ["db_host_lost"], "drill_run_dir": drill_dir,
                                   "drill_detect_attempts": 3},
                     envvars={"HB_RUN_DIR": drill_dir, "HB_STAGING_DIR": STAGING_DIR})
    duration = time.monotonic() - started
    with open(os.path.join(drill_dir, "journal.json"), encoding="utf-8") as fh:
        scenario = json.load(fh)["scenarios"][0]
    print("db_host_lost on the fleet: %.0f s, RTO %s s, RPO %s" % (duration, scenario["rto_s"], scenario["rpo"]))
    assert scenario["status"] == "passed", (scenario["deviations"], res.stdout[-4000:])
    assert res.rc == 0

    # The fault took hold on the db host, and the drill measured the RTO and the RPO against the lag at the kill.
    assert scenario["effect"]["seen"] and "no response" in scenario["effect"]["observation"]
    assert scenario["rto_s"] is not None and scenario["rto_s"] > 0
    assert scenario["facts"]["standbys_streaming_at_kill"] == 1 and "lag_bytes_at_kill" in scenario["facts"]
    window = scenario["rpo"]["replication_window"]
    assert window["explained"] and window["lost_writes"] == scenario["rpo"]["lost_writes"], scenario["rpo"]

    # The failover: its record is on the promoted server, staging-db-2, on a new timeline; both app hosts' .env
    # named staging-db-2's address, and the proving write of each app host was found there.
    promoted = records(fleet, STANDBY, "failover_db-*/failover.json")[failovers_before[STANDBY]:]
    assert len(promoted) == 1, promoted
    first = promoted[0]
    assert (first["primary"], first["standby"]) == (PRIMARY, STANDBY)
    assert int(first["timeline"]) > timeline_before  # +1 unless the archive holds a higher timeline's history
    assert first["app_hosts"] == {app: "%s:%s" % (fleet.address(STANDBY), fleet.vars["hb_pg_port"]) for app in APPS}
    assert int(first["writes_verified"]) == len(APPS)
    assert first["rpo"]["measured"] and first["rpo"]["bytes"] is not None
    # The writer kept writing through both app hosts once they were on staging-db-2.
    for app in APPS:
        assert scenario["writes"]["by_host"][app]["acknowledged"] > 0, scenario["writes"]["by_host"]

    # The switch back (the rollback's failover_db) is recorded on staging-db-1, the primary again.
    back = records(fleet, PRIMARY, "failover_db-*/failover.json")[failovers_before[PRIMARY]:]
    assert [(r["primary"], r["standby"]) for r in back] == [(STANDBY, PRIMARY)]
    assert int(back[0]["timeline"]) > int(first["timeline"])

    # Each app host kept the .env it had before each switch: one naming staging-db-1, one naming staging-db-2.
    for app in APPS:
        kept = fleet.ssh(app, "sudo -n sh -c 'ls -d %s.pre_failover_*'" % env_file(fleet)).stdout.split()
        assert any(env_points_at(fleet, app, fleet.address(PRIMARY), k) for k in kept), (app, kept)
        assert any(env_points_at(fleet, app, fleet.address(STANDBY), k) for k in kept), (app, kept)

    # After the rollback: staging-db-1 is the primary with staging-db-2 streaming from it over the network, both
    # rejoined with pg_rewind (the old data directory kept on its own host).
    assert replication(fleet, PRIMARY) == (False, [fleet.address(STANDBY)], None, None)
    assert replication(fleet, STANDBY)[:3] == (True, [], "streaming")
    assert replication(fleet, STANDBY)[3] == fleet.address(PRIMARY)
    for host, upstream in ((PRIMARY, STANDBY), (STANDBY, PRIMARY)):
        rejoin = records(fleet, host, "rejoin_db-*/rejoin.json")[-1]
        assert (rejoin["upstream"], rejoin["method"]) == (upstream, "rewind"), rejoin
        assert fleet.ssh(host, "sudo -n test -d %s" % rejoin["preserved"], check=False).returncode == 0
    # The proving writes of both failovers (two app hosts each) are on the primary.
    assert int(psql(fleet, PRIMARY, "SELECT count(*) FROM health_data WHERE metric = 'failover_check'",
                    db=fleet.vars["hb_db_name"])) - failover_check_before == 2 * len(APPS)

    # Each app host's .env names staging-db-1 again, and a write through each is acknowledged and lands there.
    for app in APPS:
        assert env_points_at(fleet, app, fleet.address(PRIMARY)), app
        status, body = fleet.http(app, "/api/health-data", "POST",
                                  {"user_id": 1, "metric": "after_failover", "value": 1})
        assert status == 201, (app, status, body)
        assert psql(fleet, PRIMARY, "SELECT count(*) FROM health_data WHERE id = %d" % int(body["id"]),
                    db=fleet.vars["hb_db_name"]) == "1"
