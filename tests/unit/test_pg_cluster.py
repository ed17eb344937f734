"""pg_control: method choice, planning, argv per method, readiness, lock triage."""

import json

import pytest
from fakes import Clock, sequence

from ansible_collections.healthbutler.recovery.plugins.module_utils import pg_control as pg
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import Conn

LSCLUSTERS = """15  main    5432 online postgres /var/lib/postgresql/15/main /var/log/postgresql/postgresql-15-main.log
14  legacy  5433 down   postgres /srv/pg14 /var/log/postgresql/postgresql-14-legacy.log
"""
INFO = {"version": "15.18", "version_num": 150018, "data_directory": "/srv/pg", "port": 55432,
        "in_recovery": False, "connections": {"max": 30, "reserved": 3, "total": 2,
                                              "by_state": {"idle": 2}, "by_user": {"health_butler": 2}}}


def cluster(runner, method="pg_ctl", euid=0, debian=None, **kw):
    clock = Clock()
    return pg.Cluster(runner, "/srv/pg", "/usr/lib/postgresql/15/bin", 55432, "/srv/run", "postgres", method,
                      debian, log_file="/srv/log/startup.log", euid=euid, sleep=clock.sleep, clock=clock, **kw)


# -- method choice -----------------------------------------------------------

@pytest.mark.parametrize("forced,systemd,debian,expected", [
    ("auto", True, ("15", "main"), "systemd"),
    ("auto", True, None, "systemd"),
    ("auto", False, ("15", "main"), "pg_ctlcluster"),
    ("auto", False, None, "pg_ctl"),
    ("pg_ctl", True, ("15", "main"), "pg_ctl"),
    ("systemd", False, None, "systemd"),
    ("pg_ctlcluster", True, ("15", "main"), "pg_ctlcluster"),
])
def test_each_method_choice(forced, systemd, debian, expected):
    assert pg.choose_method(forced, systemd, debian) == expected


def test_forcing_pg_ctlcluster_needs_a_debian_cluster():
    with pytest.raises(pg.PgControlError, match="Debian cluster"):
        pg.choose_method("pg_ctlcluster", False, None)


def test_pid1_detection(tmp_path):
    comm = tmp_path / "comm"
    comm.write_text("systemd\n")
    assert pg.pid1_is_systemd(str(comm))
    comm.write_text("tini\n")
    assert not pg.pid1_is_systemd(str(comm))
    assert not pg.pid1_is_systemd(str(tmp_path / "absent"))


def test_debian_cluster_found_by_data_directory(fake_runner):
    fake_runner.add("pg_lsclusters -h", stdout=LSCLUSTERS)
    assert pg.debian_cluster(fake_runner, "/srv/pg14") == ("14", "legacy")
    assert pg.debian_cluster(fake_runner, "/work/.sandbox/pgdata") is None


def test_no_pg_lsclusters_means_no_debian_cluster(fake_runner):
    fake_runner.add("pg_lsclusters", rc=127, stderr="not found")
    assert pg.debian_cluster(fake_runner, "/srv/pg") is None


# -- plan ---------------------------------------------------------------------

@pytest.mark.parametrize("state,running,accepting,reload,expected", [
    ("started", False, False, False, ["start"]),
    ("started", True, True, False, []),
    ("started", True, True, True, ["reload"]),
    ("started", True, False, False, ["restart"]),
    ("stopped", True, True, False, ["stop"]),
    ("stopped", False, False, False, []),
    ("restarted", True, True, False, ["restart"]),
    ("restarted", False, False, False, ["start"]),
])
def test_every_state_transition(state, running, accepting, reload, expected):
    assert pg.plan(state, running, accepting, reload) == expected


# -- argv per method ----------------------------------------------------------

def test_pg_ctl_runs_as_the_cluster_owner_when_root(fake_runner):
    argv = cluster(fake_runner, euid=0).action_argv("restart")
    assert argv[:4] == ["runuser", "-u", "postgres", "--"]
    assert argv[4:] == ["/usr/lib/postgresql/15/bin/pg_ctl", "-D", "/srv/pg", "-w", "-t", "120", "-m", "fast",
                        "-l", "/srv/log/startup.log", "restart"]


def test_pg_ctl_runs_directly_when_already_the_owner(fake_runner):
    argv = cluster(fake_runner, euid=999).action_argv("reload")
    assert argv == ["/usr/lib/postgresql/15/bin/pg_ctl", "-D", "/srv/pg", "-w", "-t", "120", "reload"]


def test_pg_ctlcluster_and_systemd_argv(fake_runner):
    assert cluster(fake_runner, "pg_ctlcluster", debian=("15", "main")).action_argv("start") == \
        ["pg_ctlcluster", "15", "main", "start"]
    assert cluster(fake_runner, "systemd", debian=("15", "main")).action_argv("restart") == \
        ["systemctl", "restart", "postgresql@15-main"]
    assert cluster(fake_runner, "systemd").action_argv("stop") == ["systemctl", "stop", "postgresql"]
    assert cluster(fake_runner, "systemd", systemd_unit="pg.service").action_argv("stop")[-1] == "pg.service"


# -- observing and waiting ----------------------------------------------------

def test_status_and_ready_query_run_as_owner(fake_runner):
    fake_runner.add("pg_ctl -D /srv/pg status", rc=0, stdout="pg_ctl: server is running (PID: 7)")
    fake_runner.add("pg_isready", rc=0).add("psql", stdout=json.dumps(INFO))
    c = cluster(fake_runner)
    assert c.running()
    info = c.wait_ready(30)
    assert info["in_recovery"] is False and info["connections"]["max"] == 30
    psql = [call for call in fake_runner.calls if "psql" in " ".join(call["argv"])][0]
    assert psql["argv"][:4] == ["runuser", "-u", "postgres", "--"]
    assert "-h" in psql["argv"] and "/srv/run" in psql["argv"]


def test_missing_data_directory_is_named(fake_runner):
    fake_runner.add("status", rc=4, stdout="pg_ctl: directory \"/srv/pg\" does not exist")
    with pytest.raises(pg.PgControlError, match="/srv/pg"):
        cluster(fake_runner).running()


def test_wait_ready_retries_until_a_query_works(fake_runner):
    fake_runner.add("psql", stdout=sequence(["", json.dumps(INFO)]))
    c = cluster(fake_runner)
    ready = iter([False, False, True, True])
    c.accepting = lambda: next(ready)
    assert c.wait_ready(30)["version"] == "15.18"
    assert c.clock() == 3  # two "not accepting" waits, one empty answer


def test_wait_ready_times_out_with_reason(fake_runner):
    fake_runner.add("pg_isready", rc=2)
    with pytest.raises(pg.PgControlError, match="not ready after 5s.*pg_isready"):
        cluster(fake_runner).wait_ready(5)


def test_apply_failure_carries_the_output(fake_runner):
    fake_runner.add("pg_ctl", rc=1, stderr="FATAL: could not open file postgresql.conf")
    with pytest.raises(Exception, match="postgresql.conf"):
        cluster(fake_runner).apply("start")


# -- triage -------------------------------------------------------------------

def test_missing_pg_stat_statements_is_reported_not_fatal(fake_runner):
    fake_runner.add("pg_extension", stdout=json.dumps({"schema": None, "columns": None}))
    fake_runner.add("pg_blocking_pids", stdout="[]").add("NOT granted", stdout='{"not_granted": 0}')
    report = pg.triage(fake_runner, Conn(host="/srv/run", port=55432), 5)
    assert report["slow_statements"] == [] and report["pg_stat_statements"].startswith("missing")


def test_triage_reads_slow_statements_as_the_diagnosis_does_with_passwords_masked(fake_runner):
    columns = ["queryid", "query", "calls", "mean_exec_time", "total_exec_time", "stddev_exec_time", "max_exec_time"]
    fake_runner.add("pg_extension", stdout=json.dumps({"schema": "public", "columns": columns}))
    fake_runner.add("pg_stat_statements s", stdout=json.dumps([
        {"queryid": "7", "calls": 4, "mean_ms": 2100.5, "total_ms": 8402.0, "query": "SELECT pg_sleep($1)"},
        {"queryid": "8", "calls": 1, "mean_ms": 3.1, "total_ms": 3.1, "query": "ALTER ROLE app PASSWORD 'hunter2'"}]))
    fake_runner.add("pg_blocking_pids", stdout="[]").add("NOT granted", stdout='{"not_granted": 0}')
    report = pg.triage(fake_runner, Conn(host="/srv/run", port=55432), 5)
    assert report["pg_stat_statements"] == "installed"
    assert [s["mean_ms"] for s in report["slow_statements"]] == [2100.5, 3.1]
    assert "hunter2" not in json.dumps(report)
    assert 'ORDER BY s."mean_exec_time" DESC LIMIT 5' in fake_runner.calls[1]["data"] + " ".join(
        fake_runner.calls[1]["argv"])


CHAINS = [
    {"blocked_pid": 20, "blocker_pid": 10, "blocker_xact_age_s": 400.0, "blocker_user": "app",
     "blocker_state": "idle in transaction", "blocker_query": "LOCK health_data"},
    {"blocked_pid": 21, "blocker_pid": 10, "blocker_xact_age_s": 400.0, "blocker_user": "app",
     "blocker_state": "idle in transaction", "blocker_query": "LOCK health_data"},
    {"blocked_pid": 22, "blocker_pid": 20, "blocker_xact_age_s": 12.0, "blocker_user": "app",
     "blocker_state": "active", "blocker_query": "INSERT"},
]


def test_only_blockers_older_than_the_threshold_are_chosen_once_each():
    assert [b["pid"] for b in pg.blockers_to_resolve(CHAINS, 300)] == [10]
    assert [b["pid"] for b in pg.blockers_to_resolve(CHAINS, 10)] == [10, 20]
    assert pg.blockers_to_resolve(CHAINS, 1000) == []


def test_cancel_then_terminate_only_what_still_blocks(fake_runner):
    fake_runner.add("pg_cancel_backend", stdout='{"10": true, "20": true}')
    fake_runner.add("pg_blocking_pids", stdout=json.dumps([CHAINS[0]]))  # 20 gave way, 10 did not
    fake_runner.add("pg_terminate_backend", stdout='{"10": true}')
    done = pg.resolve_blockers(fake_runner, Conn(port=1), pg.blockers_to_resolve(CHAINS, 10), "terminate", 0,
                               sleep=lambda s: None)
    assert done == [{"pid": 10, "action": "cancel"}, {"pid": 20, "action": "cancel"},
                    {"pid": 10, "action": "terminate"}]
    assert "ARRAY[10]" in [c["data"] for c in fake_runner.calls if "pg_terminate" in c["data"]][0]


def test_cancel_mode_never_terminates(fake_runner):
    fake_runner.add("pg_cancel_backend", stdout='{"10": true}')
    done = pg.resolve_blockers(fake_runner, Conn(port=1), pg.blockers_to_resolve(CHAINS, 300), "cancel", 0)
    assert done == [{"pid": 10, "action": "cancel"}]
    assert not any("terminate" in (c["data"] or "") for c in fake_runner.calls)


def test_idle_sessions_of_one_user_only_and_quoted():
    sql = pg.idle_sessions_sql("o'brien", 30)
    assert "usename = 'o''brien'" in sql and "state = 'idle'" in sql and "secs => 30" in sql


def test_terminate_idle_reports_what_went(fake_runner):
    fake_runner.add("pg_terminate_backend", stdout='{"31": true, "32": false}')
    assert pg.terminate_idle(fake_runner, Conn(port=1), [{"pid": 31}, {"pid": 32}]) == [31]
    assert pg.terminate_idle(fake_runner, Conn(port=1), []) == []


def test_statement_text_is_masked_in_sql():
    assert "regexp_replace(query, '(password" in pg.masked_query("query")
    assert "left(regexp_replace(b.query" in pg.BLOCKING_SQL
