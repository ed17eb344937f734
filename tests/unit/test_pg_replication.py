"""Streaming replication logic: WAL end from pg_waldump, failover readiness, RPO, slot names, URLs, promotion."""

import json

import pytest

from ansible_collections.healthbutler.recovery.plugins.filter.failover_check import failover_check as check_filter
from ansible_collections.healthbutler.recovery.plugins.module_utils import pg_replication as rep
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import Conn

CONTROL = """pg_control version number:            1300
Database cluster state:               in production
Latest checkpoint location:           0/8000060
Latest checkpoint's REDO location:    0/8000028
Latest checkpoint's TimeLineID:       1
Minimum recovery ending location:     0/0
wal_log_hints setting:                off
Data page checksum version:           1
"""


@pytest.mark.parametrize("stdout,stderr,expected", [
    ("", "pg_waldump: error: error in WAL record at 0/5000028: invalid record length at 0/5000060: wanted 24, got 0",
     "0/5000060"),
    ("", "pg_waldump: error: error in WAL record at 0/3000148: record with incorrect prev-link", "0/3000148"),
    ("rmgr: Standby     len (rec/tot):     50/    50, tx:          0, lsn: 0/05000028, prev 0/04000100, desc: X\n",
     "pg_waldump: error: could not find file \"000000010000000000000006\"", "0/500005A"),
    ("", "pg_waldump: error: could not find file", None),
])
def test_wal_end(stdout, stderr, expected):
    assert rep.wal_end(stdout, stderr) == expected


def test_controldata_summary():
    from ansible_collections.healthbutler.recovery.plugins.module_utils.pitr_exec import parse_controldata
    got = rep.controldata_summary(parse_controldata(CONTROL))
    assert got["timeline"] == 1 and got["redo_lsn"] == "0/8000028" and got["data_checksums"] is True
    assert got["wal_log_hints"] is False and got["cluster_state"] == "in production"


def standby(receive="0/5000060", status="streaming", tli=1, role="standby"):
    receiver = {"status": status} if status else None
    sql = {"in_recovery": role == "standby", "receive_lsn": receive, "replay_lsn": receive, "receiver": receiver}
    return {"role": role, "timeline": tli, "sql": sql}


def primary(end="0/5000060", role="primary", tli=1):
    return {"role": role, "timeline": tli, "wal_end_lsn": end}


@pytest.mark.parametrize("sb,pr,bound,ok,lag,problem", [
    (standby(), primary(), 1024, True, 0, None),
    (standby(receive="0/5000000"), primary(end="0/5000800"), 1024, False, 2048, "2048 bytes behind"),
    (standby(status=None), primary(), 1024, False, 0, "not streaming"),
    # a primary that is down: no streaming expected, lag from its last WAL
    (standby(status="waiting"), primary(role="down", end="0/5000100"), 1024, True, 160, None),
    (standby(tli=2), primary(), 1024, False, 0, "timelines differ"),
    (standby(role="primary"), primary(), 1024, False, 0, "not a running standby"),
    (standby(), primary(role="standby"), 1024, False, 0, "itself a standby"),
])
def test_failover_check(sb, pr, bound, ok, lag, problem):
    got = rep.failover_check(sb, pr, bound)
    assert got["ok"] is ok
    assert got["lag_bytes"] == lag
    if problem:
        assert any(problem in p for p in got["problems"]), got["problems"]


def test_failover_check_unreachable_primary_has_no_lag():
    got = check_filter(standby(status="waiting"), None, max_lag_bytes=0)
    assert got == {"ok": True, "problems": [], "lag_bytes": None, "lag_from": None}


@pytest.mark.parametrize("end,promoted,expected", [
    ("0/5000100", "0/5000060", 160), ("0/5000060", "0/5000060", 0), ("0/5000000", "0/5000060", 0),
    (None, "0/5000060", None)])
def test_rpo(end, promoted, expected):
    got = rep.rpo(end, promoted)
    assert got["bytes"] == expected and got["measured"] is (expected is not None)


def test_promoted_point_from_history():
    text = "1\t0/C0000A0\tno recovery target specified\n2\t0/D0000A0\tno recovery target specified\n"
    assert rep.promoted_point(text, 2) == "0/D0000A0"
    assert rep.promoted_point(text, 1) == "0/C0000A0"
    assert rep.promoted_point("", 1) is None


@pytest.mark.parametrize("host,slot", [("staging-db-1", "hb_staging_db_1"), ("sandbox-standby", "hb_sandbox_standby"),
                                       ("DB.Example", "hb_db_example")])
def test_slot_name(host, slot):
    assert rep.slot_name(host) == slot


@pytest.mark.parametrize("url,host,port,expected", [
    ("postgresql://u:p%40ss@127.0.0.1:55432/health_butler", "127.0.0.1", 57432,
     "postgresql://u:p%40ss@127.0.0.1:57432/health_butler"),
    ("postgres://u:pw@db-1/hb?sslmode=require", "10.0.0.22", 5432, "postgres://u:pw@10.0.0.22:5432/hb?sslmode=require"),
    ("postgresql://u:pw@db-1:5432/hb", "::1", 5433, "postgresql://u:pw@[::1]:5433/hb"),
])
def test_point_url(url, host, port, expected):
    assert rep.point_url(url, host, port) == expected
    assert rep.url_target(expected).endswith(":%d" % port)


def test_point_url_refuses_non_postgres():
    with pytest.raises(ValueError, match="postgresql://"):
        rep.point_url("mysql://u:p@h:1/x", "h", 2)


def test_state_of_a_stopped_server_reads_its_wal_end(fake_runner):
    fake_runner.add(r"pg_controldata", 0, CONTROL)
    fake_runner.add(r"pg_ctl .* status", 3, "", "pg_ctl: no server running")
    fake_runner.add(r"pg_waldump .* -t 1 -s 0/8000028", 1, "",
                    "pg_waldump: error: error in WAL record at 0/8000060: invalid record length at 0/80000D8: x")
    got = rep.state(fake_runner, Conn(host="/run", port=5432), "/data", "/bin")
    assert got["role"] == "down" and got["wal_end_lsn"] == "0/80000D8" and got["timeline"] == 1
    assert "WAL ends at 0/80000D8" in got["summary"]


def test_state_of_a_standby_uses_its_receiver_timeline(fake_runner):
    sql = {"in_recovery": True, "timeline": 1, "receive_lsn": "0/9000000", "replay_lsn": "0/9000000",
           "receiver": {"status": "streaming", "timeline": 3}, "replay_delay_s": 2.5, "replicas": [], "slots": []}
    fake_runner.add(r"pg_controldata", 0, CONTROL)
    fake_runner.add(r"pg_ctl .* status", 0, "server is running")
    fake_runner.add(r"psql", 0, json.dumps(sql))
    got = rep.state(fake_runner, Conn(host="/run", port=5432), "/data", "/bin")
    assert got["role"] == "standby" and got["timeline"] == 3 and got["wal_end_lsn"] == "0/9000000"
    assert not any("pg_waldump" in line for line in fake_runner.argv_lines())


def test_a_streaming_standby_is_on_its_receivers_timeline_not_a_newer_history_file():
    """A history file from the archive that the standby could not follow (a rolled-back PITR of the primary)."""
    sql = {"timeline": 6, "receiver": {"status": "streaming", "timeline": 6}}
    assert rep.current_timeline("standby", sql, {"timeline": 6}, 7) == 6
    assert rep.current_timeline("down", {}, {"timeline": 6}, 7) == 7  # a stopped server: its newest history file


def test_a_history_file_without_wal_of_its_timeline_is_not_the_servers_timeline(tmp_path):
    for name in ("00000006.history", "000000060000000000000009", "00000007.history"):
        (tmp_path / name).write_text("")
    assert rep.history_timeline(str(tmp_path)) == 6
    (tmp_path / "00000007000000000000000A").write_text("")
    assert rep.history_timeline(str(tmp_path)) == 7


def test_promote_a_standby(fake_runner, tmp_path):
    (tmp_path / "pg_wal").mkdir()
    (tmp_path / "pg_wal" / "00000002.history").write_text("1\t0/C0000A0\tno recovery target specified\n")
    answers = iter([json.dumps({"in_recovery": True, "timeline": 1}),
                    json.dumps({"in_recovery": False, "timeline": 2, "current_lsn": "0/C000100"}),
                    "", json.dumps(["hb_db_1"])])
    fake_runner.add(r"pg_ctl .* promote", 0, "server promoted")
    fake_runner.add(r"psql", 0, lambda argv, data: next(answers))
    got = rep.promote(fake_runner, Conn(host="/run", port=5432), str(tmp_path), "/bin", slots=["hb_db_1"],
                      old_primary_end_lsn="0/C000120", sleep=lambda s: None)
    assert got["promoted"] and got["timeline"] == 2 and got["promoted_lsn"] == "0/C0000A0"
    assert got["rpo"] == {"bytes": 128, "old_primary_end_lsn": "0/C000120", "promoted_lsn": "0/C0000A0",
                          "measured": True}
    assert got["slots_created"] == ["hb_db_1"]
    assert any("ALTER SYSTEM RESET primary_conninfo" in (c["data"] or "") for c in fake_runner.calls)


def test_promote_check_mode_changes_nothing(fake_runner):
    fake_runner.add(r"psql", 0, json.dumps({"in_recovery": True, "timeline": 1}))
    got = rep.promote(fake_runner, Conn(host="/run", port=5432), "/data", "/bin", check_mode=True)
    assert got["changed"] and not got["promoted"]
    assert not any("promote" in line for line in fake_runner.argv_lines())


def test_promote_a_primary_is_a_no_op(fake_runner, tmp_path):
    fake_runner.add(r"psql", 0, json.dumps({"in_recovery": False, "timeline": 1, "current_lsn": "0/1"}))
    got = rep.promote(fake_runner, Conn(host="/run", port=5432), str(tmp_path), "/bin")
    assert got["changed"] is False and got["promoted"] and got["promoted_lsn"] is None
    assert not any("pg_ctl" in line for line in fake_runner.argv_lines())


@pytest.mark.parametrize("alive,rc,seen,words", [
    (set(), 2, True, "no response"),
    ({11}, 2, False, "still alive"),
    (set(), 0, False, "a server answers"),
])
def test_pg_down_probe(fake_runner, alive, rc, seen, words):
    from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_effect
    fake_runner.add(r"pg_isready", rc, "")
    got, observation = drill_effect.look_pg_down({"kind": "pg_down", "pids": "10 11 12"}, fake_runner,
                                                 Conn(host="/run", port=55432), alive=lambda p: p in alive)
    assert got is seen and words in observation


def test_pg_down_probe_needs_pids():
    from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_effect
    with pytest.raises(drill_effect.EffectError, match="pids"):
        drill_effect.resolve({"kind": "pg_down"}, {})
    assert drill_effect.resolve({"kind": "pg_down", "pids": "{killed_pids}"}, {"killed_pids": "1 2"})["pids"] == "1 2"
    assert drill_effect.host_role("pg_down") == "db"


def test_db_host_lost_is_named_only():
    from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_catalog
    assert "db_host_lost" not in drill_catalog.DEFAULT_ORDER
    chosen = drill_catalog.select(["db_host_lost"])[0]
    assert chosen["recovery"]["playbook"] == "failover_db.yml" and chosen["effect"]["kind"] == "pg_down"
    with pytest.raises(drill_catalog.CatalogError, match="db_host_lost"):
        drill_catalog.select(["nope"])


@pytest.mark.parametrize("sql,role,lag_bytes,lag_s,streaming", [
    ({"in_recovery": True, "receive_lsn": "0/5", "replay_lsn": "0/5", "replay_delay_s": 40.0, "replay_pending_bytes": 0,
      "receiver": {"status": "streaming"}}, "standby", 0, 0.0, True),
    ({"in_recovery": True, "receive_lsn": "0/9", "replay_lsn": "0/5", "replay_delay_s": 3.5, "replay_pending_bytes": 4,
      "receiver": None}, "standby", 4, 3.5, False),
    ({"in_recovery": False, "current_lsn": "0/9", "replicas": [
        {"application_name": "a", "state": "streaming", "lag_bytes": 120, "lag_s": 0.2},
        {"application_name": "b", "state": "catchup", "lag_bytes": 900, "lag_s": 1.5}]}, "primary", 900, 1.5, 1),
    ({"in_recovery": False, "current_lsn": "0/9", "replicas": []}, "primary", None, None, 0),
])
def test_diagnose_replication_view(sql, role, lag_bytes, lag_s, streaming):
    from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_postgres
    view = diagnose_postgres.replication_view(sql)
    assert (view["role"], view["lag_bytes"], view["lag_s"], view["streaming"]) == (role, lag_bytes, lag_s, streaming)
    assert view["summary"].startswith(role)


def test_diagnose_facts_sql_carries_the_replication_view():
    from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_postgres
    sql = diagnose_postgres.FACTS_SQL % {"idle_s": 60, "replication": diagnose_postgres.REPLICATION_SQL}
    assert "'replication', (SELECT json_build_object(" in sql and "pg_last_xact_replay_timestamp()" in sql
    assert "::jsonb)" not in sql


def test_diagnose_standby_section_down(fake_runner):
    from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_postgres
    fake_runner.add(r"psql", 2, "", "psql: error: connection to server failed: Connection refused")
    got = diagnose_postgres.collect_replication(fake_runner, Conn(host="127.0.0.1", port=1, user="m", password="s3"))
    assert got["ok"] is False and got["role"] == "down" and got["refusal"] == "not_running"


def test_a_host_with_only_the_replication_section_is_classified():
    from ansible_collections.healthbutler.recovery.plugins.module_utils.diagnose_classify import classify
    facts = {"localhost": {"hostname": "h", "sections": ["host"], "host": {}},
             "sandbox-standby": {"hostname": "h", "sections": ["replication"],
                                 "replication": {"ok": True, "role": "standby", "lag_bytes": 0}}}
    out = classify(facts)
    assert isinstance(out, dict)
