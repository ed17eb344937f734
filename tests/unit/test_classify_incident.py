"""classify_incident: every rule at its boundary, the P-level table, targets, escalation, next playbook."""

import copy
import json

import pytest

from ansible_collections.healthbutler.recovery.plugins.filter.classify_incident import classify_incident
from ansible_collections.healthbutler.recovery.plugins.module_utils import incident_policy as policy


def healthy_facts():
    return {
        "hostname": "app-1",
        "sections": ["host", "app", "postgres", "redis", "backups"],
        "host": {"memory": {"used_percent": 40.0}, "cpu": {"used_percent": 10.0}, "load": {"load1": 0.5, "cores": 2},
                 "disks": [{"path": "/srv/pgdata", "used_percent": 50.0}]},
        "app": {"pm2": {"reachable": True}, "port": {"port": 3000, "listening": True},
                "process": {"name": "health-butler", "status": "online", "pid": 42, "restart_time": 0,
                            "unstable_restarts": 0, "uptime_s": 3600, "exit_code": None,
                            "node_args": ["--max-old-space-size=256"], "heap": {"heap_used_mb": 20.0}},
                "health": {"url": "http://127.0.0.1:3000/health", "status": 200, "time_total_s": 0.05,
                           "body": '{"status":"ok","failed":[]}'},
                "api": [],
                "error_log": {"path": "/x/err.log", "lines": [], "age_s": 5000,
                              "signatures": {"heap_out_of_memory": 0, "cannot_connect_database": 0,
                                             "prisma_connection": 0, "econnrefused": 0}}},
        "postgres": {"up": True, "query_ok": True, "pg_isready": "accepting", "in_recovery": False,
                     "connections_total": 5, "connections_available": 27, "connections_used_percent": 18.5,
                     "stat_database": {"checksum_failures": 0, "deadlocks": 0},
                     "archiver": {"failing": False}, "locks_not_granted": 0, "lock_chains": [], "waiting": [],
                     "idle_in_transaction": [],
                     "statements": {"available": True, "mean_column": "mean_exec_time",
                                    "top": [{"query": "SELECT 1", "calls": 1000, "mean_ms": 0.1}]},
                     "log": {"path": "/x/pg.log", "lines": [], "fatal": 2, "panic": 0}},
        "redis": {"ping": True, "memory_used_percent": 10.0, "evicted_keys": 0, "rdb_last_bgsave_status": "ok"},
        "backups": {"backup": {"dir": "/b", "newest": {"name": "hb.dump", "age_s": 3600}},
                    "wal": {"newest": {"name": "000000010000000000000003", "age_s": 60}}},
    }


def with_changes(changes):
    facts = healthy_facts()
    for path, value in changes.items():
        node = facts
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[keys[-1]] = value
    return facts


def ids(result):
    return [f["id"] for f in result["findings"]]


def test_healthy_has_no_finding_no_severity():
    result = classify_incident(healthy_facts())
    assert result["healthy"] is True and result["findings"] == []
    assert (result["severity"], result["scenarios"], result["targets"], result["escalation"],
            result["next_playbook"]) == (None, [], None, None, None)


OOM = "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"
HEALTH_DB = '{"status":"unavailable: database","failed":["database"]}'
HEALTH_REDIS = '{"status":"unavailable: redis","failed":["redis"]}'

STANDBY = {"role": "standby", "streaming": True, "lag_bytes": 0, "lag_s": 0.0, "timeline": 1,
           "summary": "standby on timeline 1, receiver streaming"}

# (case, changes, expected finding id or None when the boundary must NOT trigger)
CASES = [
    # 场景1: the app
    ("pm2 unreachable", {"app.pm2": {"reachable": False, "error": "EACCES"}, "app.process": None}, "pm2_unavailable"),
    ("process missing", {"app.process": None}, "app_process_missing"),
    ("stopped", {"app.process.status": "stopped", "app.process.pid": 0}, "app_stopped"),
    ("errored", {"app.process.status": "errored", "app.process.restart_time": 11}, "app_errored"),
    ("waiting restart", {"app.process.status": "waiting restart", "app.process.restart_time": 4}, "app_restart_loop"),
    ("waiting restart in a live loop", {"app.process.status": "waiting restart", "app.process.pid": 0,
                                        "app.process.restart_time": 54, "app.process.max_restarts": 10,
                                        "app.process.unstable_restarts": 3, "app.process.gave_up": False},
     "app_restart_loop"),
    ("gave up: waiting restart, 9 of 10", {"app.process.status": "waiting restart", "app.process.pid": 0,
                                           "app.process.restart_time": 9, "app.process.max_restarts": 10,
                                           "app.process.gave_up": True}, "app_errored"),
    ("launching first time", {"app.process.status": "launching"}, None),
    ("unstable, up 59 s", {"app.process.unstable_restarts": 2, "app.process.uptime_s": 59}, "app_restart_loop"),
    ("unstable, up 60 s", {"app.process.unstable_restarts": 2, "app.process.uptime_s": 60}, None),
    ("one unstable restart (an OOM death)", {"app.process.unstable_restarts": 1, "app.process.uptime_s": 5}, None),
    ("restarted by hand, stable", {"app.process.restart_time": 5, "app.process.uptime_s": 3}, None),
    ("port closed", {"app.port.listening": False}, "app_port_not_listening"),
    ("no answer", {"app.health.status": 0, "app.health.error": "Connection refused"}, "app_unreachable"),
    ("HTTP 502", {"app.health.status": 502, "app.health.body": "Bad Gateway"}, "app_http_errors"),
    ("HTTP 499", {"app.health.status": 499}, None),
    ("API 500", {"app.api": [{"url": "http://x/api", "status": 500, "time_total_s": 0.1}]}, "app_http_errors"),
    ("/health names redis", {"app.health.status": 503, "app.health.body": HEALTH_REDIS}, "app_http_errors"),
    # 场景2: the database
    ("/health names database", {"app.health.status": 503, "app.health.body": HEALTH_DB}, "app_db_errors_logged"),
    ("pg down", {"postgres.up": False, "postgres.query_ok": False, "postgres.pg_isready": "no_response",
                 "postgres.refusal": "not_running"}, "db_down"),
    ("pg refuses: full", {"postgres.query_ok": False, "postgres.refusal": "too_many_connections",
                          "postgres.query_error": "FATAL: remaining connection slots are reserved"},
     "db_connections_exhausted"),
    ("pg refuses: auth", {"postgres.query_ok": False, "postgres.refusal": "authentication"}, "db_unreachable"),
    ("connections 100 %", {"postgres.connections_used_percent": 100.0}, "db_connections_exhausted"),
    ("connections 90 %", {"postgres.connections_used_percent": 90.0}, "db_connections_saturated"),
    ("connections 89.9 %", {"postgres.connections_used_percent": 89.9}, None),
    ("db errors logged 300 s ago", {"app.error_log.age_s": 300, "app.error_log.signatures.econnrefused": 2},
     "app_db_errors_logged"),
    ("db errors logged 301 s ago", {"app.error_log.age_s": 301, "app.error_log.signatures.econnrefused": 2}, None),
    ("PANIC in log", {"postgres.log.panic": 1}, "db_panic"),
    ("FATAL lines only", {"postgres.log.fatal": 40}, None),
    # 场景3: memory
    ("memory 90.1 %", {"host.memory.used_percent": 90.1}, "host_memory_high"),
    ("memory 90 %", {"host.memory.used_percent": 90.0}, None),
    ("heap OOM logged", {"app.error_log.age_s": 10, "app.error_log.signatures.heap_out_of_memory": 1,
                         "app.error_log.lines": [OOM]}, "app_heap_oom"),
    ("heap OOM long ago", {"app.error_log.age_s": 301, "app.error_log.signatures.heap_out_of_memory": 1}, None),
    ("heap 231 of 256 MiB", {"app.process.heap.heap_used_mb": 231.0}, "app_heap_high"),
    ("heap 230.4 of 256 MiB", {"app.process.heap.heap_used_mb": 230.4}, None),
    ("redis memory 90.1 %", {"redis.memory_used_percent": 90.1}, "redis_memory_high"),
    ("redis memory 90 %", {"redis.memory_used_percent": 90.0}, None),
    # 场景4: performance
    ("response 2.01 s", {"app.health.time_total_s": 2.01}, "app_slow_response"),
    ("response 2.0 s", {"app.health.time_total_s": 2.0}, None),
    ("CPU 80.1 %", {"host.cpu.used_percent": 80.1}, "host_cpu_high"),
    ("CPU 80 %", {"host.cpu.used_percent": 80.0}, None),
    ("lock not granted", {"postgres.locks_not_granted": 1, "postgres.lock_chains": [
        {"blocker": {"pid": 10, "xact_age_s": 30}, "blocked_pids": [20], "depth": 1}]}, "db_locks_waiting"),
    ("idle in transaction", {"postgres.idle_in_transaction": [{"pid": 10, "idle_s": 61}]}, "db_idle_in_transaction"),
    ("slow statement", {"postgres.statements.top": [{"query": "SELECT pg_sleep($1)", "calls": 3,
                                                     "mean_ms": 2000.1}]}, "db_slow_statements"),
    ("slow at 2000 ms", {"postgres.statements.top": [{"query": "q", "calls": 3, "mean_ms": 2000.0}]}, None),
    ("slow one-off load", {"postgres.statements.top": [{"query": "INSERT", "calls": 2, "mean_ms": 6000}]}, None),
    ("slow: stddev = mean", {"postgres.statements.top": [{"query": "q", "calls": 3, "mean_ms": 2500,
                                                          "stddev_ms": 2500}]}, "db_slow_statements"),
    ("one outlier: stddev > mean", {"postgres.statements.top": [{"query": "INSERT", "calls": 3, "mean_ms": 2067,
                                                                 "stddev_ms": 2922}]}, None),
    ("disk 90.1 %", {"host.disks.0.used_percent": 90.1}, "disk_full"),
    ("disk 90 %", {"host.disks.0.used_percent": 90.0}, None),
    # 场景5 and the rest
    ("in recovery", {"postgres.in_recovery": True}, "db_in_recovery"),
    ("checksum failures", {"postgres.stat_database.checksum_failures": 1}, "db_checksum_failures"),
    ("archiving fails", {"postgres.archiver": {"failing": True, "failed_count": 3}}, "wal_archiving_failing"),
    ("redis down", {"redis": {"ping": False, "errors": ["ping: Connection refused"]}}, "redis_down"),
    ("redis RDB save failing", {"redis.rdb_last_bgsave_status": "err"}, "redis_rdb_save_failing"),
    ("no backup", {"backups.backup.newest": None}, "backup_missing"),
    ("backup 26 h + 1 s", {"backups.backup.newest.age_s": 26 * 3600 + 1}, "backup_stale"),
    ("backup 26 h", {"backups.backup.newest.age_s": 26 * 3600}, None),
    # what the app's users get, probed as the app's database user from the app host
    ("read fails: wrong password", {"app.users": {"db": {
        "target": "127.0.0.1:5432", "user": "hb", "key": "DATABASE_URL", "write": None,
        "read": {"ok": False, "reason": "authentication",
                 "error": 'FATAL:  password authentication failed for user "hb"'}}}}, "users_read_failing"),
    ("write fails: read-only", {"app.users": {"db": {
        "target": "127.0.0.1:5432", "user": "hb", "read": {"ok": True},
        "write": {"ok": False, "reason": "read_only",
                  "error": "ERROR:  cannot execute INSERT in a read-only transaction"}}}}, "users_write_failing"),
    ("a write waiting for a lock is no refusal", {"app.users": {"db": {"read": {"ok": True}, "write": {
        "ok": False, "reason": "lock_timeout", "error": "ERROR:  canceling statement due to lock timeout"}}}}, None),
    ("p95 over 2 s", {"app.users": {"latency": {"samples": 5, "p95_s": 2.4, "statuses": [200] * 5}}},
     "app_slow_response"),
    ("p95 at 2 s", {"app.users": {"latency": {"samples": 5, "p95_s": 2.0, "statuses": [200] * 5}}}, None),
    ("db read 1.01 s", {"app.users": {"db": {"target": "10.0.0.9:5432", "user": "hb",
                                             "read": {"ok": True, "time_s": 1.01}}}}, "app_db_round_trip_slow"),
    ("db read 1.0 s", {"app.users": {"db": {"target": "10.0.0.9:5432", "user": "hb",
                                            "read": {"ok": True, "time_s": 1.0}}}}, None),
    # the db_standby host's own replication view
    ("standby streaming, caught up", {"replication": dict(STANDBY)}, None),
    ("standby receiver not running", {"replication": dict(STANDBY, streaming=False)}, "standby_not_streaming"),
    ("standby promoted", {"replication": dict(STANDBY, role="primary", streaming=0)}, "standby_not_streaming"),
    ("standby down", {"replication": {"role": "down", "summary": "not answering"}}, "standby_not_streaming"),
    ("standby 16 MiB + 1 behind", {"replication": dict(STANDBY, lag_bytes=16777217)}, "replication_lag_high"),
    ("standby 16 MiB behind", {"replication": dict(STANDBY, lag_bytes=16777216)}, None),
    ("standby 60.5 s behind", {"replication": dict(STANDBY, lag_s=60.5)}, "replication_lag_high"),
    ("standby 60 s behind", {"replication": dict(STANDBY, lag_s=60)}, None),
]


@pytest.mark.parametrize("case,changes,expected", CASES, ids=[c[0] for c in CASES])
def test_rule_boundaries(case, changes, expected):
    result = classify_incident(with_changes(changes))
    if expected is None:
        assert result["healthy"], (case, result["findings"])
        return
    assert expected in ids(result), (case, result["findings"])
    finding = next(f for f in result["findings"] if f["id"] == expected)
    severity, scenario, _override, _meaning = policy.FINDINGS[expected]
    assert (finding["severity"], finding["scenario"]) == (severity, scenario)
    assert finding["evidence"] and finding["summary"]
    # The P-level is the more severe of the findings' and the user impact's (a /health 503 is at least P1).
    assert result["severity"] == min([f["severity"] for f in result["findings"]]
                                     + [result["impact"]["level"] or "P3"])
    if result["cause"]["id"] == "unknown":
        assert result["next_playbook"] == result["findings"][0]["next_playbook"]


def test_every_rule_in_the_table_is_exercised():
    assert {c[2] for c in CASES if c[2]} == set(policy.FINDINGS)


@pytest.mark.parametrize("changes,severity,scenarios,playbook", [
    ({"app.process.status": "stopped", "app.port.listening": False, "app.health.status": 0},
     "P0", [1], "healthbutler.recovery.restart_app"),
    ({"postgres.up": False, "postgres.query_ok": False, "postgres.refusal": "not_running",
      "app.health.status": 503, "app.health.body": HEALTH_DB}, "P0", [2],
     "healthbutler.recovery.recover_db_connection"),
    ({"app.error_log.age_s": 3, "app.error_log.signatures.heap_out_of_memory": 1,
      "app.process.uptime_s": 2, "app.process.restart_time": 1}, "P1", [3], "healthbutler.recovery.recover_memory"),
    ({"postgres.statements.top": [{"query": "q", "calls": 9, "mean_ms": 3000}]}, "P3", [4],
     "healthbutler.recovery.triage_performance"),
    ({"postgres.stat_database.checksum_failures": 2, "host.cpu.used_percent": 99}, "P1", [5, 4],
     "healthbutler.recovery.recover_db"),
])
def test_scenario_severity_and_next_playbook(changes, severity, scenarios, playbook):
    result = classify_incident(with_changes(changes))
    assert (result["severity"], result["scenarios"], result["next_playbook"]) == (severity, scenarios, playbook)
    assert result["targets"] == policy.TARGETS[severity]


@pytest.mark.parametrize("severity,response,resolution", [
    ("P0", "immediately", "< 1 hour"), ("P1", "< 15 minutes", "< 4 hours"),
    ("P2", "< 1 hour", "< 24 hours"), ("P3", "< 4 hours", "< 72 hours"),
])
def test_targets_follow_the_runbook_table(severity, response, resolution):
    assert (policy.targets(severity)["response"], policy.targets(severity)["resolution"]) == (response, resolution)


@pytest.mark.parametrize("severity,elapsed,role,notify", [
    ("P2", 0, "on-call engineer", ["on-call engineer"]),
    ("P2", 14.9, "on-call engineer", ["on-call engineer"]),
    ("P2", 15, "team lead", ["on-call engineer", "team lead"]),
    ("P1", 29.9, "team lead", ["on-call engineer", "team lead"]),
    ("P1", 30, "tech director", ["on-call engineer", "team lead", "tech director"]),
    ("P3", 59.9, "tech director", ["on-call engineer", "team lead", "tech director"]),
    ("P3", 60, "CTO", ["on-call engineer", "team lead", "tech director", "CTO"]),
    ("P0", 0, "on-call engineer", ["on-call engineer", "CTO"]),
    ("P0", 20, "team lead", ["on-call engineer", "team lead", "CTO"]),
])
def test_escalation_path(severity, elapsed, role, notify):
    step = policy.escalation(severity, elapsed)
    assert (step["role"], step["notify"]) == (role, notify)


def test_escalation_via_the_filter_and_threshold_override():
    facts = with_changes({"app.health.time_total_s": 1.5})
    assert classify_incident(facts)["healthy"]
    result = classify_incident(facts, elapsed_minutes=45, thresholds={"response_time_s": 1.0})
    assert ids(result) == ["app_slow_response"] and result["escalation"]["role"] == "tech director"
    with pytest.raises(Exception, match="unknown thresholds"):
        classify_incident(facts, thresholds={"cpu": 1})


def test_several_hosts_and_module_result_shapes():
    db_host = {"hostname": "db-1", "sections": ["host", "postgres"], "host": healthy_facts()["host"],
               "postgres": dict(healthy_facts()["postgres"], up=False, query_ok=False, refusal="not_running")}
    result = classify_incident({"app-1": healthy_facts(), "db-1": db_host})
    assert [(f["id"], f["host"]) for f in result["findings"]] == [("db_down", "db-1")]
    assert classify_incident([{"facts": db_host}])["severity"] == "P0"
    with pytest.raises(Exception, match="expects diagnose facts"):
        classify_incident("nonsense")


def test_output_is_json_and_most_severe_first():
    facts = with_changes({"host.cpu.used_percent": 95, "app.process.status": "errored", "redis.ping": False})
    result = json.loads(json.dumps(classify_incident(copy.deepcopy(facts))))
    assert [f["severity"] for f in result["findings"]] == ["P0", "P1", "P3"]
    assert set(result) >= {"healthy", "severity", "scenarios", "findings", "targets", "escalation", "next_playbook"}


def test_docs_table_matches_the_policy():
    import os
    import re

    path = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "diagnose.md")
    with open(path, encoding="utf-8") as fh:
        rows = re.findall(r"^\| `(\w+)` \| (P\d) \| (\d) \| `([^`]+)` \|", fh.read(), re.MULTILINE)
    assert {fid: (sev, int(sc), pb) for fid, sev, sc, pb in rows} == {
        fid: (sev, sc, policy.next_playbook(fid)) for fid, (sev, sc, _o, _m) in policy.FINDINGS.items()}


def test_docs_impact_table_matches_the_policy():
    import os
    import re

    path = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "diagnose.md")
    with open(path, encoding="utf-8") as fh:
        rows = re.findall(r"^\| ([^|`]+?) \| (P\d) \|$", fh.read(), re.MULTILINE)
    assert rows == [(m, p) for p, m in policy.IMPACT_LEVELS]
