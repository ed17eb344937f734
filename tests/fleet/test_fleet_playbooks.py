"""The service playbooks across the fleet: each does on the separate hosts what it does on the sandbox.

restart_app, maintenance, rollback, recover_memory, incident_report and cleanup_preserved against the
fleet inventory, with the outcome checked where it happens: the app's /health from the controller, PM2
and git on each app host, Redis and its RDB copy on the cache host, preserved copies on the db host.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading

import pytest
from fleet_helpers import STAGING_DIR, fleet_play
from harness import wait_for

APPS = ("staging-app-1", "staging-app-2")
CACHE, DB = "staging-cache-1", "staging-db-1"
STABLE, PREVIOUS = "v1.1.0", "v1.0.0"
# Short waits for the fleet; the defaults are the production values.
FAST = {"app_restart_settle": 3, "memory_recovery_settle": 3}


def pm2(fleet, host, *args, check=True):
    cmd = "PM2_HOME=%s %s %s" % (fleet.vars["hb_pm2_home"], fleet.vars["hb_pm2_bin"], " ".join(map(shlex.quote, args)))
    return fleet.ssh(host, cmd, check=check).stdout


def pm2_process(fleet, host):
    """The app's PM2 entry on ``host`` (pm2 jlist may print text before the JSON)."""
    out = pm2(fleet, host, "jlist")
    procs = json.loads(out[out.index("["):])
    return next(p for p in procs if p["name"] == fleet.vars["hb_app_name"])


def release(fleet, host):
    """(tag, commit) checked out in the app directory of ``host``."""
    out = fleet.ssh(host, "cd %s && git describe --tags && git rev-parse HEAD" % fleet.vars["hb_app_dir"]).stdout
    return tuple(out.split())


def exists(fleet, host, path, sudo=False):
    test = "%stest -e %s" % ("sudo -n " if sudo else "", shlex.quote(path))
    return fleet.ssh(host, test, check=False).returncode == 0


def assert_serving(fleet, hosts=APPS, version=None):
    """/health 200 (db and redis ok) and a real query through the app, on every host, from the controller."""
    for host in hosts:
        wait_for(lambda h=host: fleet.status(h) == 200, timeout=60, what="/health 200 on %s" % host)
        status, body = fleet.http(host)
        assert status == 200 and body["db"] == "ok" and body["redis"] == "ok", (host, body)
        if version:
            assert body["version"] == version, (host, body)
        status, rows = fleet.http(host, "/api/health-data?limit=1")
        assert status == 200 and len(rows) == 1, (host, rows)


def redis(fleet, *args):
    """redis-cli on the cache host, the password by stdin (never argv)."""
    cmd = "read -r REDISCLI_AUTH; export REDISCLI_AUTH; redis-cli -p %s %s" % (
        fleet.vars["hb_redis_port"], " ".join(map(shlex.quote, args)))
    return fleet.ssh(CACHE, cmd, stdin=fleet.credential("redis") + "\n").stdout.strip()


def test_restart_app_brings_back_the_app_stopped_on_one_host_and_reports_it(fleet, run_dir):
    other_pid = pm2_process(fleet, "staging-app-2")["pid"]
    pm2(fleet, "staging-app-1", "stop", fleet.vars["hb_app_name"])
    wait_for(lambda: fleet.status("staging-app-1") == 0, timeout=20, what="the app on staging-app-1 stopped")
    assert fleet.status("staging-app-2") == 200

    run = fleet_play("restart_app.yml", FAST, envvars={"HB_RUN_DIR": run_dir})
    assert run.rc == 0, run.stdout[-3000:]
    assert pm2_process(fleet, "staging-app-1")["pm2_env"]["status"] == "online"
    assert_serving(fleet)
    # Each host judged itself: the stopped one was restarted, the healthy one left alone.
    seen = {r["process"]["status"] for r in run.task_results("Read the PM2 process and the .env keys")}
    assert seen == {"stopped", "online"}
    restarted = [e["event_data"]["host"] for e in run.events if e.get("event") == "runner_on_ok"
                 and e["event_data"].get("task") == "Restart the app"]
    assert restarted == ["staging-app-1"]
    assert pm2_process(fleet, "staging-app-2")["pid"] == other_pid

    # The post-incident report of that run, rendered on the controller from the run's timeline.
    report = fleet_play("incident_report.yml", {"incident_report_run_dir": run_dir, "incident_report_lang": "en"})
    assert report.rc == 0, report.stdout[-3000:]
    rendered = report.task_results("Render the incident report")[0]["report"]
    assert rendered["overview"]["hosts"] == list(APPS) and rendered["overview"]["outcome"] == "ok"
    actions = [(a["host"], a["task"]) for a in rendered["response"]["actions"]]
    assert ("staging-app-1", "healthbutler.recovery.app_restart : Restart the app") in actions
    assert not [a for a in actions if a[0] == "staging-app-2" and a[1].endswith("Restart the app")]
    with open(os.path.join(run_dir, "incident-report.en.md"), encoding="utf-8") as fh:
        md = fh.read()
    assert "| staging-app-1 | healthbutler.recovery.app_restart : Restart the app | changed |" in md
    assert os.path.exists(os.path.join(run_dir, "incident-report.en.html"))


def pg_running(fleet):
    """PostgreSQL's postmaster on the db host answers on its own address (as the app hosts reach it)."""
    cmd = "%s/pg_isready -q -h %s -p %s" % ("/usr/lib/postgresql/%s/bin" % fleet.vars["hb_pg_version"],
                                            fleet.address(DB), fleet.vars["hb_pg_port"])
    return fleet.ssh(DB, cmd, check=False).returncode == 0


def test_recover_db_connection_starts_postgresql_on_the_db_host_and_both_app_hosts_serve(fleet):
    # PostgreSQL stopped on its own host; the postmaster must not hold the SSH session's output open.
    fleet.ssh(DB, "cd /tmp && sudo -n -u postgres /usr/lib/postgresql/%s/bin/pg_ctl -D /var/lib/postgresql/%s/main"
              " -m fast -w -t 60 stop </dev/null >/dev/null 2>&1" % ((fleet.vars["hb_pg_version"],) * 2))
    wait_for(lambda: all(fleet.status(h) == 503 for h in APPS), timeout=30, what="both app hosts answering 503")
    assert not pg_running(fleet)
    run = fleet_play("recover_db_connection.yml", FAST)
    assert run.rc == 0, run.stdout[-3000:]
    started = run.task_results("Start PostgreSQL only if it is down")
    assert len(started) == 1 and started[0]["changed"] and started[0]["method"] == "pg_ctl", started
    assert pg_running(fleet)
    assert_serving(fleet)


def test_triage_performance_terminates_a_lock_held_from_an_app_host_and_the_blocked_write_lands(fleet):
    """A session of the app's user from staging-app-2 holds a lock; a write through staging-app-1 waits on it."""
    v = fleet.vars
    count = "SELECT count(*) FROM health_data"
    before = int(fleet.psql_as_postgres(count))
    # The password by stdin, then psql reads the SQL from the same stdin (the session stays open).
    psql = ("read -r PGPASSWORD; export PGPASSWORD PGAPPNAME=hb-test-lock; "
            "exec /usr/lib/postgresql/%s/bin/psql -X -A -t -q -h %s -p %s -U %s -d %s"
            % (v["hb_pg_version"], fleet.address(DB), v["hb_pg_port"], v["hb_db_app_user"], v["hb_db_name"]))
    argv = ["ssh", "-i", v["ansible_ssh_private_key_file"], "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "UserKnownHostsFile=%s" % os.path.join(STAGING_DIR, "known_hosts"),
            "%s@%s" % (v["ansible_user"], fleet.address("staging-app-2")), psql]
    holder = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    writes = []
    try:
        holder.stdin.write(fleet.credential("db_app") + "\n")
        holder.stdin.write("BEGIN; LOCK TABLE health_data IN SHARE MODE; SELECT pg_backend_pid();\n")
        holder.stdin.flush()
        pid = int(holder.stdout.readline())
        writer = threading.Thread(target=lambda: writes.append(fleet.http(
            "staging-app-1", "/api/health-data", "POST", {"user_id": 3, "metric": "steps", "value": 42}, timeout=90)))
        writer.start()
        wait_for(lambda: fleet.psql_as_postgres("SELECT count(*) FROM pg_locks WHERE NOT granted") != "0", 30, 0.5,
                 "a blocked write")
        run = fleet_play("triage_performance.yml", {"performance_triage_grace": 1,
                                                    "performance_triage_resolve": "terminate",
                                                    "performance_triage_blocker_min_age": 1})
        assert run.rc == 0, run.stdout[-3000:]
        result = run.task_results("Report slow statements")[0]
        assert pid in {c["blocker_pid"] for c in result["blocking"]}
        assert {"pid": pid, "action": "terminate"} in result["resolved"]
        writer.join(60)
        assert writes and writes[0][0] == 201, writes
        assert int(fleet.psql_as_postgres(count)) == before + 1
        assert_serving(fleet)
        assert fleet.credential("db_app") not in run.stdout
    finally:
        holder.kill()
        holder.wait()


def test_maintenance_on_then_off_on_every_app_host(fleet):
    flag = fleet.vars["hb_app_maintenance_flag"].replace("{{ hb_app_dir }}", fleet.vars["hb_app_dir"])
    try:
        run = fleet_play("maintenance.yml", {"maintenance_state": "on", "maintenance_reason": "fleet test"})
        assert run.rc == 0, run.stdout[-3000:]
        for host in APPS:
            status, body = fleet.http(host)
            assert status == 503 and body["status"] == "maintenance", (host, body)
            assert exists(fleet, host, flag)
        # The flag is each app host's own file: none on the controller's /app.
        assert not os.path.exists(flag)
    finally:
        run = fleet_play("maintenance.yml", {"maintenance_state": "off"})
    assert run.rc == 0, run.stdout[-3000:]
    for host in APPS:
        assert not exists(fleet, host, flag)
    assert_serving(fleet)


def redeploy_stable(fleet, host):
    """Put ``host`` back on main at the stable tag, built and restarted (a roll forward, as after a fix)."""
    app = fleet.vars["hb_app_dir"]
    fleet.ssh(host, "cd %s && git checkout -q main && npm run build --silent >/dev/null" % app)
    pm2(fleet, host, "restart", fleet.vars["hb_app_name"])


@pytest.fixture
def released(fleet):
    """Both app hosts on main at v1.1.0 before and after."""
    for host in APPS:
        assert release(fleet, host)[0] == STABLE
    commits = {h: release(fleet, h)[1] for h in APPS}
    yield commits
    for host in APPS:
        if release(fleet, host) != (STABLE, commits[host]):
            redeploy_stable(fleet, host)
    assert_serving(fleet, version="1.1.0")


def assert_record_on(fleet, run, host, commit):
    """The preserved record of ``host``'s rollback is on that host (not on the other one, not here)."""
    records = {}
    for e in run.events:
        if e.get("event") == "runner_on_ok" and "Record the current commit" in e["event_data"].get("task", ""):
            records[e["event_data"]["host"]] = e["event_data"]["res"]["record"]
    record = records[host]
    assert record["commit"] == commit and record["branch"] == "main"
    kept = json.loads(fleet.ssh(host, "cat %s" % shlex.quote(record["record"])).stdout)
    assert kept["commit"] == commit
    built = json.loads(fleet.ssh(host, "cat %s/preserved/dist/BUILD_INFO.json" % shlex.quote(record["dir"])).stdout)
    assert built["commit"] == commit
    assert not os.path.exists(record["dir"])
    return record


# restore_files (test_fleet_backups) keeps the uploads it replaced as /app/uploads.pre_restore_<UTC>, inside the
# app's git tree: the rollback runs with its defaults and must not count that copy as a dirty tree.
ROLLBACK = {}


def test_rollback_moves_every_app_host_or_the_one_limited_to_the_previous_tag(fleet, released):
    run = fleet_play("rollback.yml", ROLLBACK)
    assert run.rc == 0, run.stdout[-4000:]
    for host in APPS:
        assert release(fleet, host)[0] == PREVIOUS
    assert_serving(fleet, version="1.0.0")
    for host in APPS:
        assert_record_on(fleet, run, host, released[host])
    for host in APPS:
        redeploy_stable(fleet, host)
    assert_serving(fleet, version="1.1.0")

    # --limit: only that host moves; the other keeps its release and its process.
    untouched = pm2_process(fleet, "staging-app-1")["pid"]
    run = fleet_play("rollback.yml", ROLLBACK, limit="staging-app-2")
    assert run.rc == 0, run.stdout[-4000:]
    assert release(fleet, "staging-app-2")[0] == PREVIOUS
    assert_serving(fleet, ["staging-app-2"], version="1.0.0")
    assert release(fleet, "staging-app-1") == (STABLE, released["staging-app-1"])
    assert_serving(fleet, ["staging-app-1"], version="1.1.0")
    assert pm2_process(fleet, "staging-app-1")["pid"] == untouched
    record = assert_record_on(fleet, run, "staging-app-2", released["staging-app-2"])
    assert not exists(fleet, "staging-app-1", record["record"], sudo=True)


def test_recover_memory_clears_the_scope_on_the_cache_host_and_restarts_with_the_heap(fleet):
    rdb_dir = fleet.vars["hb_backup_dir"] + "/redis"
    rdb_before = set(fleet.ssh(CACHE, "sudo -n ls %s 2>/dev/null || true" % rdb_dir).stdout.split())
    before = {h: pm2_process(fleet, h) for h in APPS}
    for proc in before.values():  # the fleet's own definition: another heap size
        assert "--max-old-space-size=320" not in proc["pm2_env"]["node_args"]
    app = fleet.vars["hb_app_dir"]
    for i in range(12):
        redis(fleet, "SET", "cache:fleet:%d" % i, "x" * 100)
    redis(fleet, "SET", "session:fleet:1", "keep-me")
    redis(fleet, "-n", "1", "SET", "cache:other-db", "keep-me-too")
    for host in APPS:
        fleet.ssh(host, "mkdir -p %s/.next/cache/images && echo img > %s/.next/cache/images/a.webp" % (app, app))
    try:
        run = fleet_play("recover_memory.yml", dict(FAST, memory_recovery_heap_mb=320,
                                                    memory_recovery_watch_seconds=4,
                                                    memory_recovery_watch_interval=2))
        assert run.rc == 0, run.stdout[-3000:]
        # One Redis for both app hosts: cleared once, on the cache host, after one snapshot kept there.
        cleared = run.task_results("Clear the Redis cache scope")
        assert len(cleared) == 1 and cleared[0]["keys_removed"] == 12, cleared
        assert redis(fleet, "--scan", "--pattern", "cache:*") == ""
        assert redis(fleet, "GET", "session:fleet:1") == "keep-me"
        assert redis(fleet, "-n", "1", "GET", "cache:other-db") == "keep-me-too"
        snapshot = cleared[0]["snapshot"]["path"]
        rdb_after = set(fleet.ssh(CACHE, "sudo -n ls %s" % rdb_dir).stdout.split())
        assert [os.path.join(rdb_dir, n) for n in rdb_after - rdb_before] == [snapshot]
        assert int(fleet.ssh(CACHE, "sudo -n stat -c %%s %s" % shlex.quote(snapshot)).stdout) > 0
        for host in APPS:
            assert not exists(fleet, host, rdb_dir, sudo=True)
        # Each app host restarted with the heap size, its own .next/cache moved aside (not deleted).
        for host in APPS:
            proc = pm2_process(fleet, host)
            assert proc["pm2_env"]["status"] == "online" and proc["pid"] != before[host]["pid"]
            assert "--max-old-space-size=320" in proc["pm2_env"]["node_args"]
            assert not exists(fleet, host, app + "/.next/cache")
            aside = fleet.ssh(host, "ls -d %s/.next/cache.aside-*/images/a.webp" % app).stdout.split()
            assert len(aside) == 1, (host, aside)
        assert_serving(fleet)
        for secret in (fleet.credential("redis"), fleet.credential("db_app")):
            assert secret not in run.stdout
    finally:
        redis(fleet, "DEL", "session:fleet:1")
        redis(fleet, "-n", "1", "DEL", "cache:other-db")
        for host in APPS:
            fleet.ssh(host, "rm -rf %s/.next" % app)
            # The fleet's own PM2 definition back (its heap size).
            pm2(fleet, host, "delete", fleet.vars["hb_app_name"])
            pm2(fleet, host, "start", os.path.dirname(fleet.vars["hb_pm2_home"]) + "/ecosystem.config.js")
        assert_serving(fleet)


def test_cleanup_preserved_removes_old_copies_on_the_db_host_only(fleet):
    data_dir = "/var/lib/postgresql/%s/main" % fleet.vars["hb_pg_version"]
    old, new = data_dir + ".pre_pitr_20260101T000000Z", data_dir + ".failed_pitr_29990101T000000Z"
    old_db = "%s_pre_restore_20260101T000000Z" % fleet.vars["hb_db_name"]
    fleet.ssh(DB, "sudo -n -u postgres mkdir -p %s/base %s/base" % (old, new))
    fleet.psql_as_postgres('CREATE DATABASE "%s"' % old_db)
    try:
        run = fleet_play("cleanup_preserved.yml", {"older_than_days": 30})
        assert run.rc == 0, run.stdout[-3000:]
        listed = {c["name"]: c["remove"] for c in run.task_results("List the preserved copies")[0]["copies"]}
        assert listed[old] is True and listed[old_db] is True and listed[new] is False
        removed = run.task_results("Remove the preserved copies older than the limit")[0]["removed"]
        assert {old, old_db} <= set(removed) and new not in removed
        assert not exists(fleet, DB, old, sudo=True) and exists(fleet, DB, new, sudo=True)
        assert fleet.psql_as_postgres("SELECT count(*) FROM pg_database WHERE datname = '%s'" % old_db) == "0"
        assert exists(fleet, DB, data_dir + "/PG_VERSION", sudo=True)
        assert_serving(fleet)
    finally:
        fleet.ssh(DB, "sudo -n rm -rf %s %s" % (old, new))
        fleet.psql_as_postgres('DROP DATABASE IF EXISTS "%s"' % old_db)
