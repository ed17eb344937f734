"""pm2_control: jlist parsing, planning, re-declaration and waiting, with a fake PM2."""

import json
import pathlib

import pytest
from fakes import Clock, sequence

from ansible_collections.healthbutler.recovery.plugins.module_utils import pm2_control as pc
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError


def proc(status="online", pid=4242, restarts=0, node_args=("--max-old-space-size=256",), name="health-butler",
         memory=60 * 1048576, **env):
    pm2_env = {"name": name, "status": status, "restart_time": restarts, "unstable_restarts": 0,
               "pm_exec_path": "/app/dist/server.js", "pm_cwd": "/app", "node_args": list(node_args),
               "pm_out_log_path": "/pm2/logs/out.log", "pm_err_log_path": "/pm2/logs/err.log",
               "min_uptime": 2000, "max_restarts": 10, "exec_mode": "fork_mode",
               "env": {"JWT_SECRET": "s3cr3t-value", "DATABASE_URL": "postgresql://u:pw@h/db"},
               "axm_monitor": {"Heap Size": {}}}
    pm2_env.update(env)
    return {"pid": pid if status == "online" else 0, "name": name, "pm_id": 0, "pm2_env": pm2_env,
            "monit": {"memory": memory, "cpu": 1.5}}


def jlist(*procs, noise=""):
    return noise + json.dumps(list(procs))


def make_pm2(runner):
    clock = Clock()
    return pc.Pm2(runner, "/usr/bin/pm2", "/pm2", sleep=clock.sleep, clock=clock), clock


# -- parsing --------------------------------------------------------------

@pytest.mark.parametrize("noise", [
    "",
    "[PM2] Spawning PM2 daemon with pm2_home=/pm2\n[PM2] PM2 Successfully daemonized\n",
    ">>>> In-memory PM2 is out-of-date, do:\n>>>> $ pm2 update\nIn memory PM2 version: 5.3.0\n",
    "[warn] [brackets] that are not json\n",
])
def test_jlist_json_found_after_any_leading_noise(noise):
    procs = pc.parse_jlist(jlist(proc(), proc(name="worker"), noise=noise))
    assert [p["name"] for p in procs] == ["health-butler", "worker"]


def test_jlist_without_json_is_an_error():
    with pytest.raises(pc.Pm2Error, match="no JSON"):
        pc.parse_jlist("[PM2] Spawning PM2 daemon\n")


def test_summary_never_carries_the_environment():
    summary = pc.summarize(proc())
    text = json.dumps(summary)
    assert "pm2_env" not in summary and "s3cr3t-value" not in text and "pw@" not in text
    assert summary["status"] == "online" and summary["pid"] == 4242
    assert summary["node_args"] == ["--max-old-space-size=256"]
    assert summary["script"] == "/app/dist/server.js" and summary["cwd"] == "/app"


def test_unknown_app_error_names_it_and_lists_known_apps():
    with pytest.raises(pc.Pm2Error) as err:
        pc.find_process([proc(name="worker"), proc(name="api")], "health-butler")
    assert "health-butler" in err.value.msg and "api, worker" in err.value.msg
    assert err.value.details["known_apps"] == ["api", "worker"]


def test_unknown_app_with_empty_pm2():
    with pytest.raises(pc.Pm2Error, match=r"\(none\)"):
        pc.find_process([], "health-butler")


# -- planning ---------------------------------------------------------------

@pytest.mark.parametrize("state,status,changes,expected", [
    ("started", "online", {}, []),
    ("started", "stopped", {}, ["restart"]),
    ("started", "errored", {}, ["restart"]),
    ("started", "online", {"node_args": ([], ["--x"])}, ["recreate"]),
    ("started", "stopped", {"node_args": ([], ["--x"])}, ["recreate"]),
    ("stopped", "online", {}, ["stop"]),
    ("stopped", "errored", {}, ["stop"]),
    ("stopped", "stopped", {}, []),
    ("stopped", "online", {"node_args": ([], ["--x"])}, ["stop"]),
    ("restarted", "online", {}, ["restart"]),
    ("restarted", "stopped", {}, ["restart"]),
    ("reloaded", "online", {}, ["reload"]),
    ("reloaded", "stopped", {}, ["restart"]),
])
def test_every_state_transition(state, status, changes, expected):
    assert pc.plan(state, pc.summarize(proc(status=status)), changes) == expected


def test_definition_changes_compare_node_args_and_memory_limit():
    current = pc.summarize(proc(max_memory_restart=512 * 1048576))
    assert pc.definition_changes(current, "--max-old-space-size=256", "512M") == {}
    changes = pc.definition_changes(current, "--max-old-space-size=4096", "1G")
    assert changes["node_args"] == (["--max-old-space-size=256"], ["--max-old-space-size=4096"])
    assert changes["max_memory_restart"] == (512 * 1048576, 1024 ** 3)


@pytest.mark.parametrize("bad", ["lots", "12T", "-1M"])
def test_memory_limit_must_be_a_size(bad):
    with pytest.raises(ValueError, match="max_memory_restart"):
        pc.parse_memory(bad)


def test_declaration_keeps_the_recorded_definition_without_env():
    current = pc.summarize(proc())
    decl = pc.declaration(current, {"node_args": (current["node_args"], ["--max-old-space-size=4096"])})
    app = decl["apps"][0]
    assert app["script"] == "/app/dist/server.js" and app["cwd"] == "/app"
    assert app["node_args"] == ["--max-old-space-size=4096"]
    assert app["min_uptime"] == 2000 and app["max_restarts"] == 10
    assert app["error_file"] == "/pm2/logs/err.log"
    assert "env" not in app and "s3cr3t" not in json.dumps(decl)


# -- applying and waiting -------------------------------------------------

def test_recreate_deletes_starts_from_a_declaration_and_saves(fake_runner):
    started = []
    fake_runner.add(r"pm2 delete health-butler").add(r"pm2 save")
    fake_runner.add(r"pm2 start \S+\.json", stdout=lambda argv, data: started.append(
        json.loads(pathlib.Path(argv[-1]).read_text())) or "")
    fake_runner.add(r"pm2 jlist", stdout=jlist(proc(node_args=["--max-old-space-size=4096"])))
    pm2, _unused = make_pm2(fake_runner)
    current = pc.summarize(proc())
    changes = pc.definition_changes(current, "--max-old-space-size=4096")
    pm2.apply("recreate", current, changes)
    assert [a.split()[1] for a in fake_runner.argv_lines()] == ["delete", "start", "save"]
    assert started[0]["apps"][0]["node_args"] == ["--max-old-space-size=4096"]
    assert all(c["env"] == {"PM2_HOME": "/pm2"} for c in fake_runner.calls)
    result = pm2.wait_stable("health-butler", settle=5, timeout=30)
    assert result["node_args"] == ["--max-old-space-size=4096"]


def test_failed_recreate_puts_the_old_definition_back(fake_runner):
    starts = []

    def start(argv, data):
        starts.append(json.loads(pathlib.Path(argv[-1]).read_text())["apps"][0]["node_args"])
        return ""
    fake_runner.add(r"pm2 delete").add(r"pm2 start .*", rc=1, stdout=start, stderr="bad node arg")
    pm2, _unused = make_pm2(fake_runner)
    current = pc.summarize(proc())
    with pytest.raises(CommandError):
        pm2.recreate(current, {"node_args": (current["node_args"], ["--bogus"])})
    assert starts == [["--bogus"], ["--max-old-space-size=256"]]


def test_wait_stable_waits_through_a_restart(fake_runner):
    fake_runner.add("jlist", stdout=sequence([
        jlist(proc(status="launching", pid=0)),
        jlist(proc(pid=10, restarts=1)),
        jlist(proc(pid=11, restarts=2)),   # restarted during the settle period: not stable yet
        jlist(proc(pid=11, restarts=2)),
        jlist(proc(pid=11, restarts=2)),
    ]))
    pm2, clock = make_pm2(fake_runner)
    got = pm2.wait_stable("health-butler", settle=5, timeout=60)
    assert got["pid"] == 11 and got["restart_time"] == 2
    assert clock.now >= 10


def test_wait_stable_gives_up_on_a_crash_loop(fake_runner):
    counter = {"n": 0}

    def looping(argv, data):
        counter["n"] += 1
        return jlist(proc(pid=100 + counter["n"], restarts=counter["n"]))
    fake_runner.add("jlist", stdout=looping)
    pm2, _unused = make_pm2(fake_runner)
    with pytest.raises(pc.Pm2Error, match="not online and stable") as err:
        pm2.wait_stable("health-butler", settle=3, timeout=20)
    assert err.value.details["process"]["restart_time"] > 1


def test_wait_stable_reports_errored(fake_runner):
    fake_runner.add("jlist", stdout=jlist(proc(status="errored", restarts=10)))
    pm2, _unused = make_pm2(fake_runner)
    with pytest.raises(pc.Pm2Error, match="status errored"):
        pm2.wait_stable("health-butler", settle=3, timeout=10)


def test_wait_stable_with_ready_waits_for_the_answer_then_only_confirms(fake_runner):
    """Started once the app answers; the short settle after it catches a crash of the process that answered."""
    fake_runner.add("jlist", stdout=sequence([
        jlist(proc(pid=10, restarts=1)),
        jlist(proc(pid=11, restarts=2)),   # the process that answered crashed during the confirmation
        jlist(proc(pid=11, restarts=2)),
        jlist(proc(pid=11, restarts=2)),
    ]))
    answers = sequence([False, False, True, True])
    pm2, clock = make_pm2(fake_runner)
    got = pm2.wait_stable("health-butler", settle=1, timeout=60, ready=lambda: answers(None, None))
    assert got["pid"] == 11 and clock.now < 5  # not 2 x the 5 s fixed settle


def test_wait_stable_with_ready_gives_up_when_the_app_never_answers(fake_runner):
    fake_runner.add("jlist", stdout=jlist(proc(pid=10)))
    pm2, _unused = make_pm2(fake_runner)
    with pytest.raises(pc.Pm2Error, match="not online and stable after 5s"):
        pm2.wait_stable("health-butler", settle=1, timeout=5, ready=lambda: False)


def test_wait_stopped(fake_runner):
    fake_runner.add("jlist", stdout=sequence([jlist(proc()), jlist(proc(status="stopped"))]))
    pm2, _unused = make_pm2(fake_runner)
    assert pm2.wait_stopped("health-butler", 10)["status"] == "stopped"


def test_pm2_failure_raises_with_output(fake_runner):
    fake_runner.add("restart", rc=1, stderr="[PM2][ERROR] Process health-butler not found")
    pm2, _unused = make_pm2(fake_runner)
    with pytest.raises(CommandError, match="not found"):
        pm2.apply("restart", pc.summarize(proc()))


# -- memory watch, logs, env ------------------------------------------------

def test_memory_watch_reports_a_rising_trend(fake_runner):
    fake_runner.add("jlist", stdout=sequence([jlist(proc(memory=m * 1048576)) for m in (100, 120, 140, 160)]))
    pm2, _unused = make_pm2(fake_runner)
    trend = pm2.watch_memory("health-butler", seconds=6, interval=2)
    assert trend["samples_mb"] == [100.0, 120.0, 140.0, 160.0]
    assert trend["trend"] == "rising" and trend["peak_mb"] == 160.0 and trend["slope_mb_per_min"] == 600.0


@pytest.mark.parametrize("values,trend", [((100, 101, 100), "flat"), ((200, 150, 120), "falling")])
def test_memory_trend_directions(values, trend):
    assert pc.memory_trend([(i * 10, v * 1048576) for i, v in enumerate(values)])["trend"] == trend


@pytest.mark.parametrize("line,secret", [
    ("Cannot connect to database postgresql://health_butler:Xy12pw@127.0.0.1:5432/db", "Xy12pw"),
    ("JWT_SECRET=abcdef123 loaded", "abcdef123"),
    ("redis://:r3dpass@127.0.0.1:6379/0 refused", "r3dpass"),
    ("api_key: k-998877", "k-998877"),
])
def test_log_lines_are_redacted(line, secret):
    assert secret not in pc.redact_line(line)


def test_tail_file_redacts_and_limits(tmp_path):
    log = tmp_path / "err.log"
    log.write_text("".join("line %d\n" % i for i in range(100)) + "DATABASE_URL=postgresql://u:pw9@h/db\n")
    tail = pc.tail_file(str(log), 3)
    assert tail == ["line 98", "line 99", "DATABASE_URL=postgresql://u:********@h/db"]
    assert pc.tail_file(str(tmp_path / "missing.log"), 3) == []


def test_env_file_keys_report_set_or_empty_never_values(tmp_path):
    env = tmp_path / ".env"
    env.write_text("# comment\nDATABASE_URL=postgresql://u:pw@h/db\nexport JWT_SECRET='x'\nSMS_API_KEY=\n\nBAD LINE\n")
    keys = pc.env_file_keys(str(env))
    assert keys == {"DATABASE_URL": "set", "JWT_SECRET": "set", "SMS_API_KEY": "empty"}
