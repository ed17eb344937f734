"""Drills against the staging fleet: the writer on the controller writes through both app hosts.

Three scenarios across the hosts, as ``make drill DRILL_INVENTORY=staging`` runs them:
- app_crash with the blast radius of one app host: staging-app-1 is stopped and restarted (its recovery
  limited to it), staging-app-2 keeps serving every write and is never restarted;
- network_partition: both app hosts lose their route to the db host while PostgreSQL keeps running there;
  the detection names the network, not the database, and after the heal the apps reconnect without a restart;
- data_loss: rows deleted on the db host come back from a point-in-time copy (rows mode, which ran as the login
  user on separate hosts until this drill found it), the writer's rows kept.
"""

from __future__ import annotations

import json
import os

from fleet_helpers import STAGING_DIR, fleet_play
from test_fleet_playbooks import pm2_process

APPS = ("staging-app-1", "staging-app-2")
DB = "staging-db-1"


def postmaster_started(fleet):
    return fleet.psql_as_postgres("SELECT pg_postmaster_start_time();")


def test_drill_app_crash_network_partition_and_data_loss_across_the_hosts(fleet, run_dir):
    pids_before = {h: pm2_process(fleet, h)["pid"] for h in APPS}
    pg_before = postmaster_started(fleet)
    drill_dir = os.path.join(run_dir, "drill")
    res = fleet_play("drill.yml", {"drill_scenarios": ["app_crash", "network_partition", "data_loss"],
                                   "drill_run_dir": drill_dir},
                     envvars={"HB_RUN_DIR": drill_dir, "HB_STAGING_DIR": STAGING_DIR})
    with open(os.path.join(drill_dir, "journal.json"), encoding="utf-8") as fh:
        journal = json.load(fh)
    entries = {e["name"]: e for e in journal["scenarios"]}
    assert res.rc == 0, [(e["name"], e["status"], e["deviations"]) for e in journal["scenarios"]]
    assert {n: e["status"] for n, e in entries.items()} == {
        "app_crash": "passed", "network_partition": "passed", "data_loss": "passed"}

    crash = entries["app_crash"]
    assert crash["effect"]["seen"]
    assert crash["blast_radius"] == {"faulted": ["staging-app-1"], "spared": ["staging-app-2"]}
    by_host = crash["writes"]["by_host"]
    assert by_host["staging-app-1"]["failed"] > 0 and by_host["staging-app-1"]["downtime_s"] > 0
    assert by_host["staging-app-2"]["failed"] == 0 and by_host["staging-app-2"]["acknowledged"] > 10
    assert "staging-app-2" not in crash["recovery"]["limit"] and "staging-app-1" in crash["recovery"]["limit"]
    assert crash["rpo"]["lost_writes"] == 0 and crash["rto_s"] > 0

    part = entries["network_partition"]
    assert part["effect"]["seen"] and "EHOSTUNREACH" in part["effect"]["observation"]
    cause = part["detection"]["cause"]
    assert cause["id"] == "network_partition", cause
    assert "network between app hosts staging-app-1, staging-app-2 and db host staging-db-1" in cause["line"]
    assert "does not answer pg_isready" not in cause["line"]
    assert part["detection"]["p_level"] == "P0" and 2 in part["detection"]["scenarios"]
    assert [s["name"] for s in part["steps"]].index("heal") < [s["name"] for s in part["steps"]].index("recover")
    assert part["rpo"]["lost_writes"] == 0 and part["writes"]["failed"] > 0

    loss = entries["data_loss"]
    assert loss["recovery"]["rc"] == 0 and loss["rpo"]["lost_writes"] == 0 and loss["writes"]["failed"] == 0
    deleted = loss["facts"]["deleted_ids"].split(",")
    assert len(deleted) == int(loss["facts"]["rows_deleted"]) > 0
    back = fleet.psql_as_postgres("SELECT count(*) FROM health_data WHERE id IN (%s);" % ",".join(deleted))
    assert int(back) == len(deleted)

    # PostgreSQL was never restarted; staging-app-2 was never restarted (spared by the crash, and the
    # partition healed without a restart); staging-app-1 only by the recovery of its crash.
    assert postmaster_started(fleet) == pg_before
    pids_after = {h: pm2_process(fleet, h)["pid"] for h in APPS}
    assert pids_after["staging-app-2"] == pids_before["staging-app-2"]
    assert pids_after["staging-app-1"] != pids_before["staging-app-1"]
    for host in APPS:
        routes = fleet.ssh(host, "ip route show %s/32" % fleet.address(DB)).stdout
        assert "unreachable" not in routes, (host, routes)
        assert fleet.status(host) == 200
