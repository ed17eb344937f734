"""Service recovery on the real sandbox: each scenario's playbook after its fault, injected for real."""

from __future__ import annotations

import glob
import os
import threading

import pytest
from harness import ROOT, app_session, exhaust_connections, run_playbook, wait_for
from service_helpers import BrokenBuild

from ansible_collections.healthbutler.recovery.plugins.module_utils import pm2

SERVICE_ALL = os.path.join(ROOT, "tests", "integration", "playbooks", "service_all.yml")
# Short waits for the sandbox; the defaults are the production values.
FAST = {"app_restart_settle": 3, "memory_recovery_settle": 3, "memory_recovery_watch_seconds": 0,
        "performance_triage_grace": 1}


def gave_up(box):
    """PM2 stopped restarting the crash loop for good (see pm2.gave_up for how that shows)."""
    proc = box.pm2_process()
    return pm2.gave_up(proc["pm2_env"]["status"], proc.get("pid"), proc["pm2_env"])


def starve_the_app(box, sessions):
    """Take every free slot with leaked sessions of the app's user (kept in ``sessions``), closing the
    app's own sessions and taking their slots before it reconnects, until /health answers 503."""
    sessions += exhaust_connections(box)
    for _unused in range(5):
        box.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '%s' "
                 "AND application_name <> 'hb-test-leak'" % box["hb_db_app_user"])
        sessions += exhaust_connections(box)
        if box.http("/health")[0] == 503:
            break
    box.wait_health(503, timeout=10)


def assert_serving(box):
    """/health 200 and a real query through the app."""
    box.wait_health(200, timeout=30)
    status, rows = box.http("/api/health-data?limit=1")
    assert status == 200 and len(rows) == 1


def assert_no_secret(box, text):
    for secret in box.secrets():
        assert secret not in text


def restore_app_definition(box):
    """Put the sandbox's own PM2 definition back (after heap or crash-loop tests)."""
    box.pm2("delete", box["hb_app_name"])
    box.pm2("start", os.path.join(box.dir, "ecosystem.config.js"))
    box.wait_health(200, timeout=60)


def redis_keys(box, db=0):
    return set(box.redis("-n", str(db), "--scan", "--pattern", "*").split())


def test_app_stopped_then_crash_looping(healthy):
    box = healthy
    # Fault 1: the app stopped in PM2.
    assert box.pm2("stop", box["hb_app_name"]).returncode == 0
    box.wait_health(0, timeout=20)
    run = run_playbook("restart_app.yml", FAST)
    assert run.rc == 0, run.stdout[-3000:]
    assert box.pm2_process()["pm2_env"]["status"] == "online"
    assert_serving(box)
    keys = run.task_results("Read the PM2 process and the .env keys")[0]["env_keys"]
    assert keys["DATABASE_URL"] == "set" and keys["JWT_SECRET"] == "set"
    assert_no_secret(box, run.stdout)

    # Fault 2: a crash loop. A broken build throws at every start until PM2 gives up (errored).
    broken = BrokenBuild(box)
    try:
        box.pm2("restart", box["hb_app_name"])
        wait_for(lambda: gave_up(box), 90, 1, "PM2 giving up on the app")
        # While the cause is there the playbook fails, shows the redacted error log, and stops.
        failed = run_playbook("restart_app.yml", dict(FAST, app_restart_timeout=10))
        assert failed.rc != 0
        assert BrokenBuild.MARK in failed.stdout and "did not come back" in failed.stdout
        assert_no_secret(box, failed.stdout)
        wait_for(lambda: gave_up(box), 90, 1, "PM2 giving up on the app again")
    finally:
        broken.restore()
    # The cause fixed, PM2 still has the app errored: the playbook brings it back.
    run = run_playbook("restart_app.yml", FAST)
    assert run.rc == 0, run.stdout[-3000:]
    seen = run.task_results("Read the PM2 process and the .env keys")[0]["process"]
    assert seen["status"] in ("errored", "waiting restart")
    assert box.pm2_process()["pm2_env"]["status"] == "online"
    assert_serving(box)


def test_postgres_stopped_then_connections_exhausted(healthy):
    box = healthy
    # Fault 1: PostgreSQL stopped.
    old_pid = box.pg_pid()
    assert box.pg_ctl("stop", "-m", "fast").returncode == 0
    try:
        status, body = box.wait_health(503, timeout=30)
        assert "database" in body["failed"]
        run = run_playbook("recover_db_connection.yml", FAST)
        assert run.rc == 0, run.stdout[-3000:]
        assert run.task_results("Start PostgreSQL only if")[0]["actions"] == ["start"]
        assert box.pg_pid() not in (None, old_pid)
        assert_serving(box)
    finally:
        if box.pg_pid() is None:
            box.pg_ctl("start", "-l", os.path.join(box["hb_pg_log_dir"], "startup.log"))

    # Fault 2: connections exhausted by sessions of the app's user, the app's own closed.
    sessions = []
    try:
        starve_the_app(box, sessions)
        assert len(sessions) >= 20
        pg_pid = box.pg_pid()
        run = run_playbook("recover_db_connection.yml", dict(FAST, db_restart_idle_min_age=1))
        assert run.rc == 0, run.stdout[-3000:]
        assert box.pg_pid() == pg_pid  # PostgreSQL was up: not restarted
        freed = run.task_results("Free the slots")[0]["idle_terminated"]
        assert {s.pid for s in sessions} <= set(freed)
        assert run.task_results("Restart the app")[0]["actions"] == ["restart"]
        assert_serving(box)
    finally:
        for session in sessions:
            session.close()


def test_slots_still_taken_after_freeing_idle_sessions_restart_postgres(healthy):
    """Young sessions (not idle long enough to be terminated) hold every slot: the runbook's step 1."""
    box = healthy
    rows = int(box.scalar("SELECT count(*) FROM health_data"))
    sessions = []
    try:
        starve_the_app(box, sessions)
        pg_pid = box.pg_pid()
        run = run_playbook("recover_db_connection.yml", FAST)  # idle_min_age 300 s: none of them is freed
        assert run.rc == 0, run.stdout[-3000:]
        assert run.task_results("Free the slots")[0]["idle_terminated"] == []
        assert run.task_results("Restart PostgreSQL to drop every session")[0]["actions"] == ["restart"]
        assert box.pg_pid() not in (None, pg_pid)
        assert all(not s.send("SELECT 1;") for s in sessions)  # the holders' sessions are gone
        assert_serving(box)
        assert int(box.scalar("SELECT count(*) FROM health_data")) >= rows  # committed rows kept
    finally:
        for session in sessions:
            session.close()


def test_heap_out_of_memory(healthy):
    box = healthy
    app_dir = box["hb_app_dir"]
    backups = os.path.join(box["hb_backup_dir"], "redis")
    before_rdb = set(glob.glob(os.path.join(backups, "*.rdb")))
    for i in range(30):
        box.redis("SET", "cache:page:%d" % i, "x" * 100)
    box.redis("SET", "session:user:1", "keep-me")
    box.redis("-n", "1", "SET", "cache:other-db", "keep-me-too")
    os.makedirs(os.path.join(app_dir, ".next", "cache", "images"), exist_ok=True)
    with open(os.path.join(app_dir, ".next", "cache", "images", "a.webp"), "w", encoding="utf-8") as fh:
        fh.write("cached image")
    restarts = box.pm2_process()["pm2_env"]["restart_time"]
    aside_before = set(glob.glob(os.path.join(app_dir, ".next", "cache.aside-*")))
    try:
        # Fault: the heap grows until V8 gives up; PM2 restarts the app.
        assert box.http("/debug/allocate?mb=64&forever=1", "POST")[0] == 202
        wait_for(lambda: box.pm2_process()["pm2_env"]["restart_time"] > restarts, 120, 1, "an OOM restart")
        err_log = box.pm2_process()["pm2_env"]["pm_err_log_path"]
        with open(err_log, encoding="utf-8", errors="replace") as fh:
            assert "heap out of memory" in fh.read()

        run = run_playbook("recover_memory.yml", dict(FAST, memory_recovery_heap_mb=320,
                                                      memory_recovery_watch_seconds=4,
                                                      memory_recovery_watch_interval=2))
        assert run.rc == 0, run.stdout[-3000:]
        assert_serving(box)
        assert "--max-old-space-size=320" in box.pm2_process()["pm2_env"]["node_args"]
        precheck = run.task_results("Read the PM2 process and its error log")[0]
        assert any("heap out of memory" in line for line in precheck["error_log_tail"])
        trend = run.task_results("Restart with the heap size")[0]["memory_trend"]
        assert trend["samples"] >= 2 and trend["trend"] in ("flat", "rising", "falling")
        # The Redis clear stayed in its scope, after a snapshot copied aside.
        cleared = run.task_results("Clear the Redis cache scope")[0]
        assert cleared["keys_removed"] == 30
        assert not [k for k in redis_keys(box) if k.startswith("cache:")]
        assert box.redis("GET", "session:user:1") == "keep-me"
        assert box.redis("-n", "1", "GET", "cache:other-db") == "keep-me-too"
        new_rdb = set(glob.glob(os.path.join(backups, "*.rdb"))) - before_rdb
        assert [cleared["snapshot"]["path"]] == list(new_rdb) and os.path.getsize(cleared["snapshot"]["path"]) > 0
        # .next/cache moved aside, not deleted.
        assert not os.path.exists(os.path.join(app_dir, ".next", "cache"))
        aside = set(glob.glob(os.path.join(app_dir, ".next", "cache.aside-*"))) - aside_before
        assert len(aside) == 1 and os.path.isfile(os.path.join(aside.pop(), "images", "a.webp"))
        assert_no_secret(box, run.stdout)
    finally:
        box.redis("DEL", "session:user:1")
        box.redis("-n", "1", "DEL", "cache:other-db")
        restore_app_definition(box)


def test_heap_recovery_refuses_the_production_group_before_any_change(healthy, tmp_path):
    """localhost in a production inventory: refused without -e confirm=<db host>, keys, cache and app untouched."""
    box = healthy
    app_dir = box["hb_app_dir"]
    backups = os.path.join(box["hb_backup_dir"], "redis")
    rdb_before = set(glob.glob(os.path.join(backups, "*.rdb")))
    next_cache = os.path.join(app_dir, ".next", "cache")
    made_cache = not os.path.exists(next_cache)
    os.makedirs(next_cache, exist_ok=True)
    box.redis("SET", "cache:prod-guard", "keep-me")
    proc = box.pm2_process()
    inv = tmp_path / "production-inventory"
    inv.mkdir()
    os.symlink(os.path.join(ROOT, "inventories", "sandbox", "group_vars"), inv / "group_vars")
    (inv / "hosts.yml").write_text(
        "all:\n  children:\n    production:\n      children:\n"
        "        app: {hosts: {localhost: {}}}\n        db: {hosts: {localhost: {}}}\n"
        "        cache: {hosts: {localhost: {}}}\n"
        "  vars: {ansible_connection: local, ansible_python_interpreter: /usr/bin/python3}\n", encoding="utf-8")
    try:
        run = run_playbook("recover_memory.yml", dict(FAST, memory_recovery_heap_mb=320, hb_repo_root=ROOT),
                           inventory=str(inv))
        assert run.rc != 0
        assert "is in the production group" in run.stdout and "-e confirm=localhost" in run.stdout, run.stdout[-3000:]
        assert run.task_results("Clear the Redis cache scope") == []
        assert box.redis("GET", "cache:prod-guard") == "keep-me"
        assert os.path.isdir(next_cache)
        assert set(glob.glob(os.path.join(backups, "*.rdb"))) == rdb_before
        after = box.pm2_process()
        assert after["pid"] == proc["pid"] and after["pm2_env"]["node_args"] == proc["pm2_env"]["node_args"]
        assert_serving(box)
    finally:
        box.redis("DEL", "cache:prod-guard")
        if made_cache:
            os.rmdir(next_cache)


def test_lock_blocking_writes_is_terminated(healthy):
    box = healthy
    before = int(box.scalar("SELECT count(*) FROM health_data"))
    holder = app_session(box, "hb-test-lock")
    assert holder.connect()
    writes = []
    try:
        assert holder.send("BEGIN; LOCK TABLE health_data IN SHARE MODE;") == []
        writer = threading.Thread(target=lambda: writes.append(
            box.http("/api/health-data", "POST", {"user_id": 3, "metric": "steps", "value": 42}, timeout=90)))
        writer.start()
        wait_for(lambda: box.scalar("SELECT count(*) FROM pg_locks WHERE NOT granted") != "0", 30, 0.5,
                 "a blocked write")
        # Report only by default.
        report = run_playbook("triage_performance.yml", FAST)
        assert report.rc == 0, report.stdout[-3000:]
        result = report.task_results("Report slow statements")[0]
        assert holder.pid in {c["blocker_pid"] for c in result["blocking"]} and result["resolved"] == []
        assert writer.is_alive()
        # Termination enabled (sandbox): cancel, then terminate what still blocks.
        run = run_playbook("triage_performance.yml", dict(FAST, performance_triage_resolve="terminate",
                                                          performance_triage_blocker_min_age=1))
        assert run.rc == 0, run.stdout[-3000:]
        resolved = run.task_results("Report slow statements")[0]["resolved"]
        assert {"pid": holder.pid, "action": "terminate"} in resolved
        writer.join(60)
        assert writes and writes[0][0] == 201
        assert int(box.scalar("SELECT count(*) FROM health_data")) == before + 1
        assert_serving(box)
        assert_no_secret(box, report.stdout + run.stdout)
    finally:
        holder.close()


def test_maintenance_on_and_off(healthy):
    box = healthy
    try:
        run = run_playbook("maintenance.yml", {"maintenance_state": "on", "maintenance_reason": "test"})
        assert run.rc == 0, run.stdout[-3000:]
        status, body = box.http("/health")
        assert status == 503 and body["status"] == "maintenance"
        assert os.path.exists(box["hb_app_maintenance_flag"])
    finally:
        run = run_playbook("maintenance.yml", {"maintenance_state": "off"})
    assert run.rc == 0, run.stdout[-3000:]
    assert not os.path.exists(box["hb_app_maintenance_flag"])
    assert_serving(box)


@pytest.fixture
def pending_work(healthy):
    """A healthy sandbox with work each playbook would do: cache keys and a .next/cache."""
    box = healthy
    for i in range(5):
        box.redis("SET", "cache:pending:%d" % i, "1")
    cache = os.path.join(box["hb_app_dir"], ".next", "cache")
    os.makedirs(cache, exist_ok=True)
    yield box
    box.redis("DEL", *["cache:pending:%d" % i for i in range(5)])


def snapshot_state(box):
    proc = box.pm2_process()
    return {"pm2": (proc["pid"], proc["pm2_env"]["status"], proc["pm2_env"]["restart_time"],
                    proc["pm2_env"]["node_args"]),
            "pg_pid": box.pg_pid(),
            "redis": {db: box.redis("-n", str(db), "DBSIZE") for db in (0, 1)},
            "next_cache": os.path.isdir(os.path.join(box["hb_app_dir"], ".next", "cache"))}


def test_check_mode_changes_nothing_then_second_run_changes_nothing(pending_work):
    box = pending_work
    before = snapshot_state(box)
    check = run_playbook(SERVICE_ALL, dict(FAST, app_restart_force=True, db_restart_restart_app=True,
                                           memory_recovery_heap_mb=400, memory_recovery_force_restart=True,
                                           performance_triage_resolve="terminate",
                                           performance_triage_blocker_min_age=0), check=True)
    assert check.rc == 0, check.stdout[-3000:]
    assert snapshot_state(box) == before
    # It did plan the changes it was asked for.
    assert check.task_results("Restart with the heap size")[0]["actions"] == ["recreate"]
    assert check.task_results("Clear the Redis cache scope")[0]["would_remove"] == 5

    # The sandbox has been through every recovery above: once the pending work is gone by hand,
    # a further run of all four playbooks on the healthy sandbox changes nothing.
    box.redis("DEL", *["cache:pending:%d" % i for i in range(5)])
    os.rmdir(os.path.join(box["hb_app_dir"], ".next", "cache"))
    again = run_playbook(SERVICE_ALL, FAST)
    assert again.rc == 0, again.stdout[-3000:]
    assert again.changed == 0, [e["event_data"]["task"] for e in again.events
                                if e.get("event") == "runner_on_ok" and e["event_data"]["res"].get("changed")]
    assert_serving(box)
