"""Every fault of the drill catalogue takes hold and goes away; one that never takes hold is not graded.

Inject → effect probe → rollback for the whole catalogue (no detection or recovery), then a lock scenario
whose holder locks the wrong table: the effect probe must see that nothing blocks the app's inserts.
"""

from __future__ import annotations

import os
import time

import pytest
from drill_helpers import load_journal
from harness import ROOT, run_playbook

CATALOGUE = ["app_crash", "app_crash_loop", "db_down", "connection_exhaustion", "memory_leak", "lock_contention",
             "slow_queries", "data_loss", "data_loss_cluster", "bad_release", "uploads_lost", "corrupt_backup"]


def drill(sandbox, name, **extra):
    run_dir = os.path.join(sandbox["hb_run_root"], "test-%s-%d" % (name, time.time()))
    os.makedirs(run_dir)
    run = run_playbook("drill.yml", dict({"drill_run_dir": run_dir}, **extra), envvars={"HB_RUN_DIR": run_dir})
    return run, load_journal(run_dir)


@pytest.fixture(scope="module")
def injected(sandbox):
    sandbox.ensure_healthy()
    sandbox.flush_app_logs()
    rows_before = sandbox.psql("SELECT count(*) FROM health_data WHERE metric NOT LIKE 'drill%'")
    run, journal = drill(sandbox, "inject-only", drill_inject_only=True, drill_scenarios=CATALOGUE)
    healthy_after = sandbox.is_healthy()
    rows_after = sandbox.psql("SELECT count(*) FROM health_data WHERE metric NOT LIKE 'drill%'")
    sandbox.ensure_healthy()
    return run, journal, {s["name"]: s for s in journal["scenarios"]}, healthy_after, (rows_before, rows_after)


def test_the_catalogue_is_all_here_but_the_network_faults_which_need_separate_hosts():
    from ansible_collections.healthbutler.recovery.plugins.module_utils.drill_catalog import DEFAULT_ORDER, SCENARIOS
    assert [n for n in DEFAULT_ORDER if SCENARIOS[n].get("needs") != "separate_hosts"] == CATALOGUE
    assert [n for n in DEFAULT_ORDER if n not in CATALOGUE] == ["network_partition", "network_latency"]


def test_a_network_fault_named_on_the_sandbox_is_unavailable_and_nothing_is_injected(sandbox):
    sandbox.ensure_healthy()
    run, journal = drill(sandbox, "net", drill_scenarios=["network_partition"], drill_prepare_playbooks=[])
    assert run.rc != 0
    entry = journal["scenarios"][0]
    assert entry["status"] == "unavailable"
    assert "the db host localhost is this machine" in entry["deviations"][0]
    assert entry["steps"] == [] and entry["injected_at"] is None
    assert sandbox.is_healthy()


@pytest.mark.parametrize("name", CATALOGUE)
def test_each_fault_is_seen_to_take_hold_then_rolled_back(injected, name):
    by_name = injected[2]
    scenario = by_name[name]
    effect = scenario["effect"]
    assert effect["seen"], (name, effect)
    assert 0 <= effect["after_injection_s"] <= effect["bound_s"] + 10, effect
    assert effect["observation"], effect
    assert scenario["status"] == "proved", scenario["deviations"]
    assert scenario["steady_state_after"]["ok"], scenario["steady_state_after"]
    assert scenario["rollbacks"][0]["status"] == "ok"
    steps = [s["name"] for s in scenario["steps"]]
    assert "effect" in steps and "detect" not in steps and "recover" not in steps


def test_the_effects_are_the_faults_users_would_see(injected):
    by_name = injected[2]
    seen = {n: s["effect"]["observation"] for n, s in by_name.items()}
    assert "no answer" in seen["app_crash"] and "no answer" in seen["app_crash_loop"]
    assert ": 503 " in seen["db_down"] and "database" in seen["db_down"]
    assert "remaining connection slots" in seen["connection_exhaustion"] or "too many clients" in \
        seen["connection_exhaustion"]
    assert "heap" in seen["memory_leak"]
    assert "could not obtain lock" in seen["lock_contention"]
    assert seen["data_loss"].startswith("0 of 200 deleted row(s) still in health_data")
    assert ": 500 " in seen["bad_release"]
    assert seen["uploads_lost"].startswith("5 of 5 file(s) missing")
    assert "its sidecar says" in seen["corrupt_backup"]


def test_the_system_is_as_it_was_after_the_rollbacks(injected):
    run, journal, _by_name, healthy_after, (rows_before, rows_after) = injected
    assert run.rc == 0, run.stdout[-3000:]
    assert journal["status"] == "passed" and journal["not_passed"] == []
    assert healthy_after
    # the deleted rows were put back by the rollback (never lost), the drill's own rows aside
    assert rows_after == rows_before


def test_a_fault_that_never_takes_hold_is_injection_failed_and_not_graded(sandbox):
    """The holder locks `users`, not `health_data`: the app's inserts are never blocked."""
    sandbox.ensure_healthy()
    sandbox.flush_app_logs()
    run, journal = drill(sandbox, "wrong-table", drill_scenarios=["lock_contention"], drill_lock_table="users",
                         drill_effect_timeout=6, drill_detect_attempts=1)
    scenario = journal["scenarios"][0]
    assert run.rc != 0
    assert scenario["status"] == "injection_failed", scenario["deviations"]
    assert scenario["effect"]["seen"] is False
    assert "nothing blocks an INSERT" in scenario["effect"]["observation"]
    assert scenario["deviations"][0].startswith("the fault never took hold: an INSERT's lock on health_data cannot "
                                                "be had not seen within 6.0 s")
    assert scenario["detection"] is None and scenario["recovery"] is None and scenario["rto_s"] is None
    assert [s["name"] for s in scenario["steps"] if s["name"] in ("detect", "recover")] == []
    assert "lock_contention / injection_failed / the fault never took hold" in run.stdout
    with open(os.path.join(journal["run_dir"], "table.txt"), encoding="utf-8") as fh:
        assert "| not seen " in fh.read()
    # rolled back all the same: no drill session is left, the app writes
    assert sandbox.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'hb_drill_%'") == "0"
    assert sandbox.is_healthy()


def test_nothing_run_as_postgres_reads_the_checkout():
    """The suite runs from a checkout postgres cannot read (scripts/private-checkout.sh): prove it is one."""
    import subprocess
    probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-r", os.path.join(ROOT, "Makefile")],
                           check=False)
    assert probe.returncode != 0, "%s is readable by postgres: run the suite through make integration" % ROOT
