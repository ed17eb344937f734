"""A drill on the real sandbox opens an incident labelled drill (its diagnosis), notifies the drill
channel only, acknowledges it when the recovery starts, and the recovery (restart_app, verification
green) resolves it; the incident report of the drill shows those real times and who was told when."""

from __future__ import annotations

import glob
import json
import os
import secrets

import pytest
from harness import ROOT
from incident_helpers import HttpReceiver, SmtpReceiver, ansible_playbook, files_containing

SANDBOX_INVENTORY = os.path.join(ROOT, "inventories", "sandbox")


@pytest.fixture
def receivers(tmp_path, healthy):
    """Receivers plus a second inventory source over the sandbox's: the incident part of the site model."""
    http, smtp_password = HttpReceiver(), "smtp-" + secrets.token_hex(10)
    smtp = SmtpReceiver(smtp_password)
    paths = {"real": "/hook/real-" + secrets.token_hex(8), "drill": "/drill/dr-" + secrets.token_hex(8)}
    inv = tmp_path / "incident-inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "hosts.yml").write_text("all:\n  hosts:\n    localhost:\n")
    site = {
        "hb_repo_root": ROOT,  # the sandbox inventory derives it from its own directory
        "hb_incident_dir": str(tmp_path / "incidents"),
        "hb_incident_notify": True, "hb_incident_backoff_s": 0.05,
        "hb_incident_contacts": {name: {"role": name, "email": "%s@healthbutler.test" % name,
                                        "channels": ["real", "email"]}
                                 for name in ("oncall", "team_lead", "tech_director", "cto")},
        "hb_incident_channels": [
            {"name": "real", "type": "webhook", "url": http.url(paths["real"])},
            {"name": "email", "type": "email", "host": "127.0.0.1", "port": smtp.port, "username": "hb",
             "password": smtp_password, "from": "hb@healthbutler.test"},
            {"name": "drill", "type": "webhook", "url": http.url(paths["drill"])}],
        "hb_incident_drill_channel": "drill",
    }
    (inv / "group_vars" / "all" / "incident.yml").write_text(json.dumps(site))
    yield {"http": http, "smtp": smtp, "paths": paths, "inventory": str(inv), "base": str(tmp_path),
           "secrets": [paths["real"].split("/")[-1], paths["drill"].split("/")[-1], smtp_password]
           + healthy.secrets()}
    http.stop()
    smtp.stop()


def test_drill_incident_reaches_the_drill_channel_only_and_its_report_has_real_times(receivers, healthy):
    r = receivers
    healthy.flush_app_logs()  # an earlier test's traces would read as residue in the steady-state check
    run_dir = os.path.join(r["base"], "drill")
    rc, console = ansible_playbook(SANDBOX_INVENTORY, None, "drill.yml",
                                   {"drill_scenarios": ["app_crash"], "drill_run_dir": run_dir,
                                    "drill_detect_attempts": 3, "drill_steady_timeout": 6},
                                   run_dir, inventories=[r["inventory"]])
    assert rc == 0, console[-4000:]
    scenario_dir = os.path.join(run_dir, "app_crash")
    records = []
    for path in glob.glob(os.path.join(r["base"], "incidents", "INC-*")):
        with open(path, encoding="utf-8") as fh:
            records.append(json.load(fh))
    assert len(records) == 1, [x["id"] for x in records]
    inc = records[0]
    assert inc["labels"] == ["drill"] and inc["severity"] == "P0" and inc["status"] == "resolved"
    assert inc["acknowledged_by"] == "drill"
    assert inc["detected_at"] <= inc["acknowledged_at"] <= inc["resolved_at"]
    assert inc["resolution"]["playbook"] == "healthbutler.recovery.restart_app"
    assert inc["resolution"]["run_dir"] == os.path.join(scenario_dir, "recover")
    # the drill channel got the trigger of every step (P0), the acknowledgement and the resolve; nobody real
    drill = r["http"].accepted(r["paths"]["drill"])
    assert [b["event"] for b in drill] == ["trigger"] * 4 + ["acknowledge", "resolve"]
    assert {b["incident"]["id"] for b in drill} == {inc["id"]}
    assert not r["http"].accepted(r["paths"]["real"]) and not r["smtp"].messages

    rc, report_console = ansible_playbook(SANDBOX_INVENTORY, None, "incident_report.yml",
                                          {"incident_report_run_dir": scenario_dir}, os.path.join(r["base"], "rep"),
                                          inventories=[r["inventory"]])
    assert rc == 0, report_console[-3000:]
    with open(os.path.join(scenario_dir, "incident-report.zh.md"), encoding="utf-8") as fh:
        report = fh.read()
    section = report.split("## 4. 响应和恢复")[1].split("## 5.")[0]
    assert "- **检测时间**: %s" % inc["detected_at"] in section
    assert "- **响应时间**: %s (drill)" % inc["acknowledged_at"] in section
    assert "- **恢复时间**: %s (healthbutler.recovery.restart_app" % inc["resolved_at"] in section
    assert section.count("drill (webhook)") == 6 and "real (webhook)" not in section

    leaks = files_containing(run_dir, r["secrets"])
    leaks += files_containing(os.path.join(r["base"], "incidents"), r["secrets"])
    leaks += ["console: %s" % s[:6] for s in r["secrets"] if s in console + report_console]
    assert not leaks, leaks
