"""The system journal in the diagnosis: this machine has no systemd as PID 1, so the report says so."""

from __future__ import annotations

import json
import os

from harness import run_playbook


def test_diagnosis_says_no_journal_on_this_host(healthy, run_dir):
    assert not os.path.isdir("/run/systemd/system")  # the premise: no systemd journal here
    run = run_playbook("diagnose.yml", {"diagnose_run_dir": run_dir, "diagnose_sections": ["app"]})
    assert run.rc == 0, run.stdout[-3000:]
    with open(os.path.join(run_dir, "diagnosis.json"), encoding="utf-8") as fh:
        journal = json.load(fh)["facts"]["localhost"]["app"]["journal"]
    assert journal["available"] is False
    assert journal["reason"].startswith("no journal on this host")
    assert journal["command"] == "journalctl -u %s -n 500" % healthy["hb_app_name"]
    with open(os.path.join(run_dir, "diagnosis.md"), encoding="utf-8") as fh:
        report = fh.read()
    assert "- system journal (`journalctl -u health-butler -n 500`): no journal on this host" in report
