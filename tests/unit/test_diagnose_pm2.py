"""pm2: jlist parsing with leading noise, safe process summary (never pm2_env whole)."""

import json

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import pm2
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError

NOW = 1_800_000_000.0


def proc(status="online", restart_time=0, unstable=0, uptime_ms=NOW * 1000 - 90_000, exit_code=None, **extra):
    env = {"status": status, "restart_time": restart_time, "unstable_restarts": unstable, "pm_uptime": uptime_ms,
           "exit_code": exit_code, "node_args": ["--max-old-space-size=256"], "pm_err_log_path": "/x/err.log",
           "env": {"JWT_SECRET": "jwt-secret-value", "DATABASE_URL": "postgresql://u:dbpw@h/db"},
           "JWT_SECRET": "jwt-secret-value", "SMS_API_KEY": "sms-key-value",
           "axm_monitor": {"Used Heap Size": {"value": "8.58", "unit": "MiB"}, "Heap Size": {"value": "11.48"},
                           "Heap Usage": {"value": 74.78}}}
    env.update(extra)
    return {"pid": 4242 if status == "online" else 0, "name": "health-butler", "pm_id": 0, "pm2_env": env,
            "monit": {"memory": 60_000_000, "cpu": 1.5}}


@pytest.mark.parametrize("noise", [
    "",
    "[PM2] Spawning PM2 daemon with pm2_home=/srv/.pm2\n[PM2] PM2 Successfully daemonized\n",
    ">>>> In-memory PM2 is out-of-date, do:\n>>>> $ pm2 update\nIn memory PM2 version: 5.3.0\n",
    "[WARN] [x] weird\n",
])
def test_parse_jlist_skips_text_before_the_json(noise):
    text = noise + json.dumps([proc()]) + "\n"
    procs = pm2.parse_jlist(text)
    assert [p["name"] for p in procs] == ["health-butler"]


def test_parse_jlist_empty_and_garbage():
    assert pm2.parse_jlist("[PM2] Spawning daemon\n[]\n") == []
    with pytest.raises(ValueError, match="no JSON process list"):
        pm2.parse_jlist("[PM2] Spawning daemon\nsomething broke")


def test_summary_reports_the_runbook_fields_and_no_environment():
    summary = pm2.process_summary(proc(restart_time=3, unstable=1), now=NOW)
    assert summary["status"] == "online" and summary["pid"] == 4242
    assert summary["restart_time"] == 3 and summary["unstable_restarts"] == 1
    assert summary["uptime_s"] == 90 and summary["memory_bytes"] == 60_000_000
    assert summary["heap"] == {"heap_used_mb": 8.58, "heap_total_mb": 11.48, "heap_usage_percent": 74.78}
    assert summary["node_args"] == ["--max-old-space-size=256"]
    text = json.dumps(summary)
    assert "pm2_env" not in text and "jwt-secret-value" not in text and "dbpw" not in text
    assert "sms-key-value" not in text


def test_summary_of_a_stopped_and_a_missing_process():
    stopped = pm2.process_summary(proc(status="stopped", exit_code=0), now=NOW)
    assert stopped["pid"] == 0 and stopped["uptime_s"] is None and stopped["exit_code"] == 0
    assert stopped["heap"]["heap_used_mb"] == 8.58  # last known values are still reported
    assert pm2.process_summary(None) is None
    assert pm2.find_process([proc()], "other") is None


def test_jlist_sets_pm2_home_and_raises_on_failure(fake_runner):
    fake_runner.add(r"pm2 jlist", 0, "[PM2] noise\n" + json.dumps([proc()]))
    assert pm2.jlist(fake_runner, "pm2", "/srv/pm2")[0]["pid"] == 4242
    assert fake_runner.calls[0]["env"] == {"PM2_HOME": "/srv/pm2"}
    fake_runner.rules.insert(0, (r"pm2 jlist", 1, "", "daemon not running"))
    with pytest.raises(CommandError, match="rc=1"):
        pm2.jlist(fake_runner, "pm2", "/srv/pm2")


@pytest.mark.parametrize("status, pid, env, expected", [
    ("errored", 0, {"created_at": 1, "unstable_restarts": 0}, True),
    # measured on PM2 7 with restart_delay: given up at restart_time 9 of max_restarts 10
    ("waiting restart", 0, {"created_at": None, "unstable_restarts": 0, "restart_time": 9}, True),
    # the pause between two restarts of a live loop
    ("waiting restart", 0, {"created_at": 1795920284372, "unstable_restarts": 3}, False),
    ("waiting restart", 4983, {"created_at": 1795920284372, "unstable_restarts": 9}, False),
    ("waiting restart", 0, {"unstable_restarts": 0}, False),  # an older PM2 without the field: not proof
    ("online", 4242, {"created_at": None, "unstable_restarts": 0}, False),
])
def test_gave_up_tells_a_finished_loop_from_a_live_one(status, pid, env, expected):
    assert pm2.gave_up(status, pid, env) is expected
    summary = pm2.process_summary({"pid": pid, "name": "a", "pm2_env": dict(env, status=status)}, now=NOW)
    assert summary["gave_up"] is expected
