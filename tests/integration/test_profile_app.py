"""profile_app.yml: a real V8 CPU profile of the PM2 app under load, the app's definition exactly as before."""

from __future__ import annotations

import glob
import os

from harness import run_playbook


def definition(box):
    proc = box.pm2_process()
    return {"node_args": proc["pm2_env"].get("node_args"), "script": proc["pm2_env"]["pm_exec_path"],
            "status": proc["pm2_env"]["status"]}


def test_profile_under_load_names_an_app_function_and_puts_the_definition_back(healthy):
    before = definition(healthy)
    run = run_playbook("profile_app.yml", {"seconds": 4, "url": "/api/health-data"})
    assert run.rc == 0, run.stdout[-4000:]
    assert definition(healthy) == before
    assert healthy.http("/health")[0] == 200
    runs = sorted(glob.glob(os.path.join(healthy["hb_pm2_home"], "profiles", "*")))
    with open(os.path.join(runs[-1], "profile.md"), encoding="utf-8") as fh:
        report = fh.read()
    app_rows = report.split("## The app's own functions by ticks")[1]
    assert "/dist/server.js:" in app_rows, report  # a function of the app's own code, sampled
    assert os.path.exists(os.path.join(runs[-1], "pm2-definition.json"))
    assert "requests answered, 0 failed" in run.stdout


def test_bad_input_is_refused_before_the_app_is_touched(healthy):
    pid = healthy.pm2_process()["pid"]
    run = run_playbook("profile_app.yml", {"seconds": "ten"})
    assert run.rc != 0
    assert 'seconds must be a whole number of seconds >= 1 (got "ten")' in run.stdout, run.stdout[-3000:]
    assert healthy.pm2_process()["pid"] == pid
