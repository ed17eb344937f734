"""PostgreSQL collector: pg_stat_statements column generations, lock chains, a down or full server."""

import json

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_postgres as pg
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import Conn

PG12_COLUMNS = ["userid", "dbid", "queryid", "query", "calls", "total_time", "min_time", "max_time", "mean_time",
                "stddev_time", "rows"]
PG13_COLUMNS = ["userid", "dbid", "toplevel", "queryid", "query", "plans", "total_plan_time", "calls",
                "total_exec_time", "min_exec_time", "max_exec_time", "mean_exec_time", "stddev_exec_time", "rows"]
NEW = {"mean": "mean_exec_time", "total": "total_exec_time", "stddev": "stddev_exec_time", "max": "max_exec_time"}
OLD = {"mean": "mean_time", "total": "total_time", "stddev": "stddev_time", "max": "max_time"}


@pytest.mark.parametrize("columns,expected", [
    (PG13_COLUMNS, NEW),
    (PG12_COLUMNS, OLD),
    (PG13_COLUMNS + ["mean_time", "total_time", "stddev_time", "max_time"], NEW),
    (["queryid", "query", "calls"], None),
    (None, None),
])
def test_statement_columns_are_read_from_the_view(columns, expected):
    assert pg.statement_columns(columns) == expected


def test_statements_sql_uses_the_chosen_generation():
    sql13 = pg.statements_sql("public", NEW, 5, 3)
    sql12 = pg.statements_sql("monitoring", OLD, 10)
    assert 'ORDER BY s."mean_exec_time" DESC LIMIT 5' in sql13 and "s.calls >= 3" in sql13
    assert '"monitoring".pg_stat_statements' in sql12 and 'round(s."total_time"::numeric, 2)' in sql12
    assert 'round(s."stddev_time"::numeric, 2) AS stddev_ms' in sql12 and "_exec_time" not in sql12


def test_lock_chain_of_two_levels_under_one_root():
    waiting = [{"pid": 20, "blocked_by": [10]}, {"pid": 30, "blocked_by": [20]}, {"pid": 31, "blocked_by": [10]}]
    blockers = [{"pid": 10, "state": "idle in transaction", "xact_age_s": 95}, {"pid": 20, "xact_age_s": 5}]
    chains = pg.lock_chains(waiting, blockers)
    assert chains == [{"blocker": {"pid": 10, "state": "idle in transaction", "xact_age_s": 95},
                       "blocked_pids": [20, 30, 31], "depth": 2}]


def test_two_independent_chains_oldest_blocker_first():
    waiting = [{"pid": 2, "blocked_by": [1]}, {"pid": 4, "blocked_by": [3]}]
    blockers = [{"pid": 1, "xact_age_s": 10}, {"pid": 3, "xact_age_s": 300}]
    assert [c["blocker"]["pid"] for c in pg.lock_chains(waiting, blockers)] == [3, 1]


def test_a_cycle_still_yields_a_chain():
    chains = pg.lock_chains([{"pid": 5, "blocked_by": [6]}, {"pid": 6, "blocked_by": [5]}], [])
    assert chains == [{"blocker": {"pid": 5}, "blocked_pids": [6], "depth": 1}]
    assert pg.lock_chains([], []) == []


@pytest.mark.parametrize("message,reason", [
    ("FATAL:  remaining connection slots are reserved for non-replication superuser connections",
     "too_many_connections"),
    ("FATAL:  sorry, too many clients already", "too_many_connections"),
    ("FATAL:  the database system is starting up", "starting_up"),
    ('FATAL:  password authentication failed for user "hb_monitor"', "authentication"),
    ('connection to server at "127.0.0.1", port 5432 failed: Connection refused', "not_running"),
    ("something else", "other"),
])
def test_refusal_reasons(message, reason):
    assert pg.refusal_reason(message) == reason


def facts(columns=tuple(PG13_COLUMNS), schema="public", **extra):
    doc = {"version": "15.18", "version_num": 150018, "in_recovery": False, "database": "health_butler",
           "max_connections": 30, "superuser_reserved_connections": 3, "reserved_connections": 0,
           "connections_total": 27, "connections_by_state": {"idle": 26, "active": 1},
           "stat_database": {"deadlocks": 0, "conflicts": 0, "checksum_failures": 0, "xact_rollback": 1},
           "archiver": {"failing": False}, "locks_not_granted": 1,
           "waiting": [{"pid": 20, "blocked_by": [10], "query": "INSERT INTO health_data VALUES (1)"}],
           "blockers": [{"pid": 10, "xact_age_s": 40, "query": "ALTER ROLE x PASSWORD 'leakme123'"}],
           "idle_in_transaction": [],
           "pg_stat_statements": {"schema": schema, "columns": columns}}
    doc.update(extra)
    return json.dumps(doc)


CONN = Conn("127.0.0.1", 5432, "hb_monitor", "monitor-pw", "health_butler", "/usr/lib/postgresql/15/bin")


def test_collect_healthy_server_pg12_columns(fake_runner, tmp_path):
    log = tmp_path / "postgresql.log"
    log.write_text("2026-11-28 UTC [1] LOG:  ok\n2026-11-28 UTC [2] FATAL:  password authentication failed\n"
                   "2026-11-28 UTC [3] PANIC:  could not write to file\n")
    fake_runner.add(r"pg_isready", 0, "accepting")
    fake_runner.add(r"pg_stat_statements s", 0, json.dumps([{"query": "SELECT pg_sleep($1)", "mean_ms": 3001.2,
                                                             "calls": 3}]))
    fake_runner.add(r"psql", 0, facts(columns=PG12_COLUMNS))
    out = pg.collect(fake_runner, CONN, str(log), idle_in_transaction_s=30, statements_min_calls=3)
    assert out["ok"] and out["connections_available"] == 27 and out["connections_used_percent"] == 100.0
    assert out["statements"]["mean_column"] == "mean_time" and out["statements"]["top"][0]["calls"] == 3
    assert 'ORDER BY s."mean_time"' in fake_runner.calls[2]["data"]
    assert "make_interval(secs => 30)" in fake_runner.calls[1]["data"]
    assert out["lock_chains"][0]["blocker"]["pid"] == 10 and "leakme123" not in json.dumps(out)
    assert (out["log"]["fatal"], out["log"]["panic"]) == (1, 1)
    for call in fake_runner.calls:
        assert "monitor-pw" not in " ".join(call["argv"]) and call["env"]["PGPASSWORD"] == "monitor-pw"


def test_missing_extension_is_said_not_failed(fake_runner):
    fake_runner.add(r"pg_isready", 0).add(r"psql", 0, facts(schema=None, columns=None))
    out = pg.collect(fake_runner, CONN)
    assert out["ok"] and out["statements"] == {
        "available": False, "reason": "extension pg_stat_statements is not installed in health_butler"}
    assert len(fake_runner.calls) == 2


def test_extension_not_preloaded_is_said_not_failed(fake_runner):
    fake_runner.add(r"pg_isready", 0)
    fake_runner.add(r"pg_stat_statements s", 3, "", "ERROR:  pg_stat_statements must be loaded via "
                                                    "shared_preload_libraries")
    fake_runner.add(r"psql", 0, facts())
    out = pg.collect(fake_runner, CONN)
    assert out["statements"]["available"] is False and "shared_preload_libraries" in out["statements"]["reason"]


def test_down_server_is_a_finding_not_an_exception(fake_runner):
    fake_runner.add(r"pg_isready", 2, "127.0.0.1:5432 - no response")
    fake_runner.add(r"psql", 2, "", 'psql: error: connection to server at "127.0.0.1", port 5432 failed: '
                                    "Connection refused")
    out = pg.collect(fake_runner, CONN, log_path="/nonexistent/postgresql.log")
    assert (out["ok"], out["up"], out["pg_isready"], out["refusal"]) == (False, False, "no_response", "not_running")
    assert "cannot read" in out["log"]["read_error"]


def test_full_server_refuses_the_monitoring_role(fake_runner):
    fake_runner.add(r"pg_isready", 0)
    fake_runner.add(r"psql", 2, "", "psql: error: FATAL:  remaining connection slots are reserved for "
                                    "non-replication superuser connections")
    out = pg.collect(fake_runner, CONN)
    assert out["up"] and not out["query_ok"] and out["refusal"] == "too_many_connections"
