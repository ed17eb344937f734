"""Drills on the real sandbox: a subset end to end, a failing recovery, production refused, reports.

Kept lean (two short drills); the whole catalogue is `make drill`, not the test suite.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from drill_helpers import load_journal, render, timeline_rows
from harness import ROOT, run_playbook

STANDIN = os.path.join(ROOT, "tests", "integration", "playbooks")


def standin(name):
    return {"playbook": os.path.join(STANDIN, name), "vars": {}}


def drill(run_dir, scenarios, overrides=None, inventory=None, **extra):
    extravars = {"drill_scenarios": scenarios, "drill_run_dir": run_dir, "drill_scenario_overrides": overrides or {},
                 "drill_detect_attempts": 3}
    extravars.update(extra)
    return run_playbook("drill.yml", extravars, inventory=inventory, envvars={"HB_RUN_DIR": run_dir})


def new_run_dir(sandbox, name):
    path = os.path.join(sandbox["hb_run_root"], "test-%s-%d" % (name, time.time()))
    os.makedirs(path)
    return path


@pytest.fixture(scope="module")
def drilled(sandbox):
    """One drill: app_crash + db_down end to end (the collection's playbooks where they exist, else test
    stand-ins), and app_crash_loop pointed at a recovery that cannot succeed."""
    sandbox.ensure_healthy()
    sandbox.flush_app_logs()  # traces of earlier tests' faults would read as residue in the steady-state check
    overrides = {"app_crash_loop": {"recovery": standin("drill_standin_cannot_recover.yml")}}
    for name, playbook, fallback in (("app_crash", "restart_app.yml", "drill_standin_restart_app.yml"),
                                     ("db_down", "recover_db_connection.yml", "drill_standin_start_db.yml")):
        if not os.path.exists(os.path.join(ROOT, "playbooks", playbook)):
            overrides[name] = {"recovery": standin(fallback)}
    run_dir = new_run_dir(sandbox, "drill")
    run = drill(run_dir, ["app_crash", "db_down", "app_crash_loop"], overrides, drill_steady_timeout=6)
    healthy_after = sandbox.is_healthy()
    sandbox.ensure_healthy()
    journal = load_journal(run_dir)
    return run, run_dir, journal, {s["name"]: s for s in journal["scenarios"]}, healthy_after


def test_subset_drill_measures_and_prints_the_table(drilled):
    run, run_dir, _journal, by_name, _healthy = drilled
    assert list(by_name) == ["app_crash", "db_down", "app_crash_loop"]
    for s in (by_name["app_crash"], by_name["db_down"]):
        assert s["steady_state_before"]["ok"] and s["steady_state_after"]["ok"], s["deviations"]
        assert s["rto_s"] is not None and s["rto_s"] > 0
        assert s["rollbacks"][0]["status"] == "ok"
        assert s["writes"]["acknowledged"] > 0
        assert s["rpo"]["lost_writes"] == 0
        assert s["recovery"]["status"] == "ok"
    # the outage is downtime, not loss: writes failed while PostgreSQL was down, none acknowledged is gone
    assert by_name["db_down"]["writes"]["failed"] > 0 and by_name["db_down"]["writes"]["downtime_s"] > 0
    if os.path.exists(os.path.join(ROOT, "playbooks", "diagnose.yml")):
        for s in (by_name["app_crash"], by_name["db_down"]):
            assert s["detection"]["status"] == "detected", s["detection"]
            assert s["status"] == "passed", s["deviations"]
    else:  # without diagnosis nothing may pass: the gap is reported as a deviation
        for s in (by_name["app_crash"], by_name["db_down"]):
            assert s["status"] == "failed"
            assert s["deviations"] == ["detection: unavailable: diagnose.yml missing"]
    assert run.rc != 0  # app_crash_loop failed, so the drill fails
    with open(os.path.join(run_dir, "table.txt"), encoding="utf-8") as fh:
        table = fh.read()
    assert table.count("\n") == 5 and "| app_crash " in table and "| db_down " in table
    assert "| app_crash " in run.stdout and "drill.html" in run.stdout
    # every run kept its own timeline: the drill, and each scenario's recovery
    for sub in ("", "app_crash/recover", "db_down/recover"):
        assert os.path.getsize(os.path.join(run_dir, sub, "timeline.jsonl")) > 0, sub


def test_drill_html_renders_in_chromium(drilled, tmp_path):
    _run, run_dir, journal, _by_name, _healthy = drilled
    dom, console = render(os.path.join(run_dir, "drill.html"), str(tmp_path / "drill.png"))
    assert timeline_rows(dom) == [s["name"] for s in journal["scenarios"]]
    assert console == []
    assert (tmp_path / "drill.png").stat().st_size > 10000


def test_failed_recovery_still_rolls_back(drilled):
    _run, _run_dir, _journal, by_name, healthy_after = drilled
    scenario = by_name["app_crash_loop"]
    assert scenario["status"] == "failed" and scenario["deviated"]
    assert any("recovery drill_standin_cannot_recover.yml failed (rc=2, expected success): Give up: stand-in "
               "recovery: cannot recover" in d for d in scenario["deviations"]), scenario["deviations"]
    assert any(d.startswith("steady state not reached after recovery") for d in scenario["deviations"])
    assert scenario["rollbacks"] == [{"name": "app_crash_loop", "status": "ok", "detail": None}]
    assert scenario["rto_s"] is None
    # the rollback, not the test, brought the errored app back: healthy right after the drill
    assert healthy_after


def test_production_inventory_refused_before_any_injection(sandbox, tmp_path):
    sandbox.ensure_healthy()
    before = (sandbox.pm2_process()["pid"], sandbox.pg_pid())
    run = drill(str(tmp_path / "drill"), ["app_crash"], inventory=os.path.join(ROOT, "inventories", "production"))
    assert run.rc != 0
    assert "drill refused: the inventory is production" in run.stdout
    assert "production-app-1" in run.stdout
    assert not os.path.exists(tmp_path / "drill" / "app_crash")
    assert not [t for t in ("Stop the app in PM2", "Start the writer") if run.task_results(t)]
    assert (sandbox.pm2_process()["pid"], sandbox.pg_pid()) == before and sandbox.is_healthy()


def test_failing_recovery_run_renders_into_an_incident_report(sandbox, drilled, tmp_path):
    """The timeline of a failing recover_db.yml run (or, until it is on main, of a failing recovery)."""
    if os.path.exists(os.path.join(ROOT, "playbooks", "recover_db.yml")):
        run_dir = str(tmp_path / "recover-db")
        failed = run_playbook("recover_db.yml", {"recover_mode": "pitr", "target": {
            "time": "2999-01-01T00:00:00+00:00"}}, envvars={"HB_RUN_DIR": run_dir})
        assert failed.rc != 0
    else:
        run_dir = os.path.join(drilled[1], "app_crash_loop", "recover")
    for lang, heads in (("zh", ("事故概述", "根因分析", "影响评估", "响应和恢复", "改进措施")),
                        ("en", ("Overview", "Root cause analysis", "Impact", "Response and recovery", "Improvements"))):
        run = run_playbook("incident_report.yml", {"incident_report_run_dir": run_dir, "incident_report_lang": lang,
                                                   "incident_report_severity": "P1"})
        assert run.rc == 0, run.stdout[-3000:]
        with open(os.path.join(run_dir, "incident-report.%s.md" % lang), encoding="utf-8") as fh:
            md = fh.read()
        sections = md.split("\n## ")[1:]
        assert [s.split("\n", 1)[0].split(". ", 1)[1] for s in sections] == list(heads)
        for section in sections:
            assert len(section.split("\n", 1)[1].strip()) > 40, section
        report = run.task_results("Render the incident report")[0]["report"]
        assert report["overview"]["outcome"] == "failed"
        assert report["root_cause"]["failed_tasks"], report["root_cause"]
        assert os.path.exists(os.path.join(run_dir, "incident-report.%s.html" % lang))
    for secret in sandbox.secrets():
        assert secret not in md
    json.dumps(report)
