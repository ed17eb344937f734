"""User impact -> P-level, and the cause line, from diagnose facts (what the integration faults produce)."""

import copy

import pytest

from ansible_collections.healthbutler.recovery.plugins.filter.classify_incident import classify_incident

AUTH_ERR = ('psql: error: connection to server at "127.0.0.1", port 55432 failed: FATAL:  password authentication '
            'failed for user "health_butler"')
RO_ERR = "ERROR:  cannot execute INSERT in a read-only transaction"


def facts():
    return {
        "hostname": "app-1",
        "app": {
            "pm2": {"reachable": True},
            "process": {"name": "health-butler", "status": "online", "pid": 42, "restart_time": 0,
                        "unstable_restarts": 0, "uptime_s": 3600},
            "port": {"port": 3000, "listening": True,
                     "holders": [{"address": "127.0.0.1:3000", "pid": 42, "command": "node", "cmdline": "node s.js"}]},
            "health": {"url": "http://127.0.0.1:3000/health", "status": 200, "time_total_s": 0.02,
                       "body": '{"failed":[]}'},
            "api": [],
            "error_log": {"lines": [], "age_s": 9999, "signatures": {}, "summary": {"messages": [], "signatures": {}}},
            "users": {
                "db": {"key": "DATABASE_URL", "target": "127.0.0.1:55432", "user": "health_butler",
                       "database": "health_butler", "read": {"ok": True}, "write": {"ok": True}},
                "redis": {"key": "REDIS_URL", "target": "127.0.0.1:56379", "ok": True},
                "latency": {"samples": 5, "p95_s": 0.03, "statuses": [200] * 5},
                "env_backup": {"backup": "20261201T030000Z", "mtime": "2026-12-01T21:55:00Z", "differ": False,
                               "changed": [], "added": [], "removed": []},
            },
        },
        "postgres": {"up": True, "query_ok": True, "pg_isready": "accepting", "in_recovery": False,
                     "default_transaction_read_only": "off", "default_transaction_read_only_source": "default",
                     "xid_age_max": 1000, "connections_used_percent": 10.0, "stat_database": {}, "archiver": {},
                     "locks_not_granted": 0, "lock_chains": [], "idle_in_transaction": [], "statements": {},
                     "log": {"panic": 0}},
        "redis": {"ping": True},
    }


def change(base, **paths):
    out = copy.deepcopy(base)
    for path, value in paths.items():
        node = out
        keys = path.split("__")
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return out


def test_healthy_has_no_cause_and_no_impact():
    c = classify_incident(facts())
    assert c["healthy"] and c["cause"] is None and c["impact"]["level"] is None


def wrong_password(base=None, env_changed=True):
    f = change(base or facts(), app__health={"url": "http://127.0.0.1:3000/health", "status": 503,
                                             "time_total_s": 0.01, "body": '{"failed":["database"]}'},
               app__users__db__read={"ok": False, "reason": "authentication", "error": AUTH_ERR},
               app__users__db__write=None)
    if env_changed:
        f["app"]["users"]["env_backup"].update(differ=True, changed=[{"key": "DATABASE_URL", "parts": ["password"]}])
    return f


def test_wrong_password_in_env_is_p0_config_changed_then_restore_files():
    c = classify_incident(wrong_password())
    assert c["severity"] == "P0" and c["impact"]["reason"].startswith("/health answers 503")
    assert c["cause"]["id"] == "config_changed"
    line = c["cause"]["line"]
    assert "DATABASE_URL (password part differs)" in line and "2026-12-01T21:55:00Z" in line
    assert "20261201T030000Z" in line and line.endswith("Fix: healthbutler.recovery.restore_files.")
    assert c["next_playbook"] == "healthbutler.recovery.restore_files"
    assert [o["id"] for o in c["causes"]] == ["credentials"]


def test_wrong_password_without_env_change_is_credentials_with_a_manual_fix():
    c = classify_incident(wrong_password(env_changed=False))
    assert c["cause"]["id"] == "credentials" and "the monitoring role connects" in c["cause"]["line"]
    assert c["next_playbook"] is None and "ALTER ROLE health_butler PASSWORD" in c["next_step"]


def test_credentials_need_the_server_up():
    f = change(wrong_password(env_changed=False), postgres__up=False, postgres__query_ok=False,
               postgres__pg_isready="no_response")
    assert classify_incident(f)["cause"]["id"] != "credentials"


def test_port_held_names_holder_and_a_manual_fix():
    f = change(facts(), app__process={"name": "health-butler", "status": "errored", "pid": 0, "restart_time": 10,
                                      "unstable_restarts": 10, "uptime_s": 0, "gave_up": True},
               app__health={"url": "http://x/health", "status": 0, "error": "Connection refused"})
    f["app"]["port"]["holders"] = [{"address": "127.0.0.1:3000", "pid": 777, "command": "python3",
                                    "cmdline": "python3 -m http.server 3000"}]
    f["app"]["error_log"]["summary"] = {"signatures": {"eaddrinuse": 10}, "messages": []}
    c = classify_incident(f)
    assert c["severity"] == "P0" and c["cause"]["id"] == "port_held"
    assert "pid 777 (python3: python3 -m http.server 3000)" in c["cause"]["line"]
    assert "EADDRINUSE x10" in c["cause"]["line"] and "kill 777" in c["cause"]["manual"]
    assert c["next_playbook"] is None


def test_the_app_holding_its_own_port_is_no_port_held():
    f = change(facts(), app__process__unstable_restarts=3, app__process__uptime_s=5,
               app__health={"url": "http://x/health", "status": 500, "time_total_s": 0.01, "body": "{}"})
    c = classify_incident(f)
    assert c["findings"] and c["cause"]["id"] != "port_held"


@pytest.mark.parametrize("pg,expect", [
    ({"default_transaction_read_only": "on", "default_transaction_read_only_source": "configuration file"},
     "server-wide"),
    ({"default_transaction_read_only": "on", "default_transaction_read_only_source": "database"},
     "for the database"),
    ({}, "for the app's role health_butler"),
])
def test_writes_refused_read_only_p1_with_scope(pg, expect):
    f = change(facts(), app__users__db__write={"ok": False, "reason": "read_only", "error": RO_ERR})
    f["postgres"].update(pg)
    c = classify_incident(f)
    assert c["severity"] == "P1" and c["impact"]["reason"].startswith("every write fails")
    assert c["cause"]["id"] == "db_refuses_writes" and expect in c["cause"]["line"]
    assert "users_write_failing" in [x["id"] for x in c["findings"]]


def test_in_recovery_and_wraparound_refuse_writes():
    f = change(facts(), postgres__in_recovery=True)
    c = classify_incident(f)
    assert c["cause"]["id"] == "db_refuses_writes" and "in recovery" in c["cause"]["line"]
    assert c["next_playbook"] == "healthbutler.recovery.recover_db"
    f = change(facts(), app__users__db__write={"ok": False, "reason": "wraparound", "error": "wraparound"},
               postgres__xid_age_max=2100000000)
    c = classify_incident(f)
    assert "wraparound" in c["cause"]["line"] and "vacuumdb --all --freeze" in c["cause"]["manual"]


def test_a_write_waiting_for_a_lock_is_not_a_refusal():
    f = change(facts(), app__users__db__write={"ok": False, "reason": "lock_timeout", "error": "lock timeout"},
               postgres__locks_not_granted=1)
    c = classify_incident(f)
    assert c["severity"] == "P2" and c["impact"]["level"] is None and c["cause"]["id"] == "unknown"


def test_disk_full_names_where_and_what_grows():
    f = facts()
    f["host"] = {"disks": [{"path": "/srv/pgdata", "used_percent": 97.0, "free_gb": 0.1, "exists": True,
                            "largest": [{"path": "/srv/pgdata/pg_wal", "size_mb": 900.0, "newest_age_s": 2}]}]}
    c = classify_incident(f)
    assert c["cause"]["id"] == "disk_full"
    assert "/srv/pgdata on app-1 is 97.0% full" in c["cause"]["line"] and "pg_wal 900.0 MB (written 2s ago)" in \
        c["cause"]["line"]


def test_redis_down_is_dependency_unreachable_from_which_host_to_which():
    f = change(facts(), redis__ping=False,
               app__health={"url": "http://x/health", "status": 503, "time_total_s": 0.01,
                            "body": '{"failed":["redis"]}'},
               app__users__redis={"key": "REDIS_URL", "target": "127.0.0.1:56379", "ok": False, "reason": "refused",
                                  "error": "Could not connect to Redis at 127.0.0.1:56379: Connection refused"})
    c = classify_incident(f)
    assert c["severity"] == "P1" and c["cause"]["id"] == "dependency_unreachable"
    assert c["cause"]["line"].startswith("From app-1 the app cannot reach Redis at 127.0.0.1:56379")


def test_db_down_points_at_recover_db_connection():
    f = change(facts(), postgres__up=False, postgres__query_ok=False, postgres__pg_isready="no_response",
               app__users__db__read={"ok": False, "reason": "refused", "error": "Connection refused"},
               app__users__db__write=None)
    c = classify_incident(f)
    assert c["severity"] == "P0" and c["cause"]["id"] == "dependency_unreachable"
    assert c["next_playbook"] == "healthbutler.recovery.recover_db_connection"


def test_unknown_says_so_with_the_most_frequent_log_line():
    f = change(facts(), app__process__status="stopped", app__process__pid=0,
               app__port={"port": 3000, "listening": False})
    f["app"]["error_log"]["summary"] = {"signatures": {}, "messages": [
        {"message": "Error: injected crash", "count": 9, "first": None, "last": None, "signatures": []}]}
    c = classify_incident(f)
    assert c["cause"]["id"] == "unknown" and c["cause"]["line"].startswith("cause unknown: PM2 shows")
    assert "Error: injected crash (x9)" in c["cause"]["line"]
    assert c["next_playbook"] == "healthbutler.recovery.restart_app"  # the findings' playbook, no guess


def test_slow_p95_is_p3():
    c = classify_incident(change(facts(), app__users__latency={"samples": 5, "p95_s": 2.5, "statuses": [200] * 5}))
    assert c["severity"] == "P3" and c["impact"]["level"] == "P3"


NO_ROUTE = ('psql: error: could not connect to server: No route to host\n\tIs the server running on host '
            '"10.212.12.21" and accepting TCP/IP connections on port 5432?')
DB_TARGET = "10.212.12.21:5432"


def fleet(app_db=None, pg=None):
    """staging-app-1 and -2 run the app, staging-db-1 PostgreSQL: {host: facts}; ``app_db`` per app host."""
    base = facts()
    out = {}
    for host in ("staging-app-1", "staging-app-2"):
        app = copy.deepcopy(base["app"])
        app["users"]["db"].update(target=DB_TARGET, read={"ok": True, "time_s": 0.05}, write={"ok": True})
        app["users"]["db"].update((app_db or {}).get(host) or {})
        out[host] = {"hostname": host, "app": app}
    out["staging-db-1"] = {"hostname": "staging-db-1", "postgres": dict(base["postgres"], **(pg or {}))}
    return out


def cut(reason="unreachable", error=NO_ROUTE):
    return {"read": {"ok": False, "reason": reason, "error": error}, "write": None}


def test_partition_from_both_app_hosts_with_pg_up_names_the_network_not_the_database():
    f = fleet({"staging-app-1": cut(), "staging-app-2": cut("timeout", "psql: error: timeout expired")})
    c = classify_incident(f)
    cause = c["cause"]
    assert cause["id"] == "network_partition", cause
    line = cause["line"]
    assert line.startswith("The network between app hosts staging-app-1, staging-app-2 and db host staging-db-1 is "
                           "cut: the app's database cannot be reached from staging-app-1")
    assert "from staging-app-1 at 10.212.12.21:5432: there is no route to the host (psql: error: could not " \
        "connect to server: No route to host" in line
    assert "; from staging-app-2 at 10.212.12.21:5432: the connection times out (" in line
    assert "PostgreSQL on staging-db-1 is up (pg_isready: accepting" in line
    assert "down" not in line and "DATABASE_URL" not in line
    assert "restore the route/firewall between app hosts staging-app-1, staging-app-2 and db host staging-db-1" in \
        cause["manual"]
    assert "no restart needed" in cause["manual"] and "healthbutler.recovery.recover_db_connection" in \
        cause["manual"]
    assert cause["evidence"]["from"] == ["staging-app-1", "staging-app-2"]
    assert "dependency_unreachable" not in [o["id"] for o in c["causes"]]
    assert c["next_playbook"] is None and c["next_step"] == cause["manual"]


def test_partition_from_one_app_host_names_only_that_host():
    cause = classify_incident(fleet({"staging-app-2": cut()}))["cause"]
    assert cause["id"] == "network_partition" and cause["evidence"]["from"] == ["staging-app-2"]
    assert cause["line"].startswith("The network between app host staging-app-2 and db host staging-db-1 is cut")


def test_no_route_with_pg_down_stays_dependency_unreachable_db_down():
    f = fleet({"staging-app-1": cut(), "staging-app-2": cut()},
              pg={"up": False, "query_ok": False, "pg_isready": "no_response"})
    c = classify_incident(f)
    assert c["cause"]["id"] == "dependency_unreachable" and c["cause"]["evidence"]["db_down"] is True
    assert "does not answer pg_isready (no_response)" in c["cause"]["line"]
    assert "there is no route to the host" in c["cause"]["line"]
    assert c["next_playbook"] == "healthbutler.recovery.recover_db_connection"


def test_no_route_on_one_host_is_no_partition():
    f = change(facts(), app__users__db__read={"ok": False, "reason": "unreachable", "error": NO_ROUTE},
               app__users__db__write=None)
    assert classify_incident(f)["cause"]["id"] == "dependency_unreachable"


def test_redis_partition_while_redis_answers_ping_on_its_host():
    f = fleet()
    f["staging-app-1"]["app"]["users"]["redis"] = {
        "key": "REDIS_URL", "target": "10.212.12.31:6379", "ok": False, "reason": "unreachable",
        "error": "Could not connect to Redis at 10.212.12.31:6379: No route to host"}
    f["staging-app-1"]["app"]["health"].update(status=503, body='{"failed":["redis"]}')
    f["staging-cache-1"] = {"hostname": "staging-cache-1", "redis": {"ping": True}}
    cause = classify_incident(f)["cause"]
    assert cause["id"] == "network_partition" and "Redis on staging-cache-1 answers PING" in cause["line"]
    assert cause["line"].startswith("The network between app host staging-app-1 and cache host staging-cache-1 is "
                                    "cut: the app's Redis cannot be reached from staging-app-1 at 10.212.12.31:6379: "
                                    "there is no route to the host")


def slow_read(time_s=1.43):
    return {"read": {"ok": True, "time_s": time_s, "rows": 1}, "write": {"ok": True}}


def test_slow_read_from_the_app_hosts_is_network_latency():
    c = classify_incident(fleet({"staging-app-1": slow_read(), "staging-app-2": slow_read(1.2)}))
    slow = [x for x in c["findings"] if x["id"] == "app_db_round_trip_slow"]
    assert [x["host"] for x in slow] == ["staging-app-1", "staging-app-2"]
    assert slow[0]["severity"] == "P3" and slow[0]["scenario"] == 4
    assert slow[0]["summary"] == "the app's read as health_butler at 10.212.12.21:5432 took 1.43 s (threshold 1.0 s)"
    assert c["severity"] == "P3" and c["next_step"] == c["cause"]["manual"]
    cause = c["cause"]
    assert cause["id"] == "network_latency", cause
    assert cause["line"].startswith(
        "The network between app hosts staging-app-1, staging-app-2 and db host staging-db-1 is slow: a read as "
        "health_butler took "
        "1.43 s from staging-app-1, 1.20 s from staging-app-2 (threshold 1.0 s); on staging-db-1 no statement ran long")
    assert "not the database" in cause["manual"] and "tc qdisc" in cause["manual"]


def test_slow_read_with_slow_statements_on_the_db_host_is_no_network_latency():
    f = fleet({"staging-app-1": slow_read()}, pg={"statements": {"mean_column": "mean_exec_time", "top": [
        {"query": "SELECT * FROM health_data", "calls": 50, "mean_ms": 2500.0, "stddev_ms": 100.0}]}})
    c = classify_incident(f)
    assert {"app_db_round_trip_slow", "db_slow_statements"} <= {x["id"] for x in c["findings"]}
    assert c["cause"]["id"] != "network_latency" and "network_latency" not in [o["id"] for o in c["causes"]]


def test_a_slow_read_on_the_db_host_itself_is_no_network_latency():
    f = change(facts(), app__users__db__read={"ok": True, "time_s": 1.5})
    c = classify_incident(f)
    assert "app_db_round_trip_slow" in [x["id"] for x in c["findings"]] and c["cause"]["id"] == "unknown"
