"""Real faults for the diagnose tests: each a context manager that injects, yields, and restores.

Restores run in ``finally``; traces a fault leaves in the app's PM2 logs are flushed so the
next test starts from a clean, healthy sandbox.
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import json
import os
import shutil
import subprocess
import threading

from harness import exhaust_connections, superuser_session, wait_for

from ansible_collections.healthbutler.recovery.plugins.module_utils import pm2


def ensure_backup(box):
    """A real pg_dump in the backup directory, as the daily backup would leave; its path if we made it."""
    dumps = os.path.join(box["hb_backup_dir"], "dumps")
    if glob.glob(os.path.join(dumps, "*.dump")):
        return None
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = os.path.join(dumps, "%s_%s.dump" % (box["hb_db_name"], stamp))
    cmd = "mkdir -p %s && exec %s/pg_dump -Fc -h %s -p %s -f %s %s" % (
        dumps, box["hb_pg_bindir"], box["hb_pg_socket_dir"], box["hb_pg_port"], target, box["hb_db_name"])
    subprocess.run(["su", "-s", "/bin/sh", box["hb_pg_os_user"], "-c", cmd], check=True, capture_output=True)
    return target


# -- faults ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def app_stopped(box):
    assert box.pm2("stop", box["hb_app_name"]).returncode == 0
    try:
        wait_for(lambda: box.pm2_process()["pm2_env"]["status"] == "stopped", what="pm2 stopped")
        yield
    finally:
        box.pm2("restart", box["hb_app_name"])
        box.wait_health(200)


@contextlib.contextmanager
def crash_loop(box):
    """The app throws at start-up until PM2 gives up (see pm2.gave_up)."""
    server = os.path.join(box["hb_app_dir"], "dist", "server.js")
    backup = server + ".diagnose-test"
    shutil.copy2(server, backup)
    before = box.pm2_process()["pm2_env"]["restart_time"]  # cumulative over the sandbox's life
    try:
        with open(server, encoding="utf-8") as fh:
            code = fh.read()
        with open(server, "w", encoding="utf-8") as fh:
            fh.write('throw new Error("injected by the diagnose test: crash at start-up");\n' + code)
        box.pm2("restart", box["hb_app_name"])

        def gave_up():
            proc = box.pm2_process()
            env = proc["pm2_env"]
            return pm2.gave_up(env["status"], proc.get("pid"), env) and env["restart_time"] > before
        wait_for(gave_up, timeout=90, what="PM2 to give up on the crash loop")
        yield
    finally:
        shutil.move(backup, server)
        box.pm2("restart", box["hb_app_name"])
        box.wait_health(200)
        box.flush_app_logs()


@contextlib.contextmanager
def heap_oom(box):
    """The sandbox app allocates until V8 dies of heap exhaustion; PM2 restarts it."""
    before = box.pm2_process()["pm2_env"]["restart_time"]
    try:
        status, _body = box.http("/debug/allocate?mb=64&forever=1", method="POST")
        assert status == 202
        wait_for(lambda: box.pm2_process()["pm2_env"]["restart_time"] > before, timeout=120, what="OOM restart")
        box.wait_health(200)
        yield
    finally:
        box.wait_health(200)
        box.flush_app_logs()


@contextlib.contextmanager
def postgres_stopped(box):
    assert box.pg_ctl("stop", "-m", "fast").returncode == 0
    try:
        box.wait_health(503)
        yield
    finally:
        box.pg_ctl("start", "-l", os.path.join(box["hb_pg_log_dir"], "startup.log"))
        box.wait_health(200)
        box.flush_app_logs()


@contextlib.contextmanager
def connections_exhausted(box, limit=60):
    """Idle app-user sessions until PostgreSQL refuses the next one (max_connections minus reserved)."""
    sessions = []
    try:
        sessions = exhaust_connections(box, limit)
        if len(sessions) == limit:
            raise AssertionError("PostgreSQL never refused a connection after %s sessions" % limit)
        yield len(sessions)
    finally:
        for session in sessions:
            session.close()
        box.wait_health(200)
        box.flush_app_logs()


@contextlib.contextmanager
def lock_blocking_writes(box):
    """An open transaction holds ACCESS EXCLUSIVE on health_data while an app POST waits for it.

    Yields {"blocker_pid": int}; afterwards ``result["post"]`` holds the POST's (status, body).
    """
    session = superuser_session(box)
    result = {}
    writer = None
    try:
        result["blocker_pid"] = int(session.ask(
            "BEGIN; LOCK TABLE health_data IN ACCESS EXCLUSIVE MODE; SELECT pg_backend_pid();"))

        def post():
            result["post"] = box.http("/api/health-data", "POST", {"user_id": 1, "metric": "steps", "value": 1},
                                      timeout=120)
        writer = threading.Thread(target=post, daemon=True)
        writer.start()
        wait_for(lambda: box.psql("SELECT count(*) FROM pg_locks WHERE NOT granted") != "0", what="a waiting lock")
        yield result
    finally:
        session.ask("ROLLBACK; SELECT 'done';")
        session.close()
        if writer:
            writer.join(timeout=60)


@contextlib.contextmanager
def slow_statement(box, seconds=2.1, times=3):
    """A statement slower than the 2 s target, run often enough to count as recurring.

    Earlier calls of the same normalised statement (another test's short pg_sleep) would share its mean: reset
    them first.
    """
    reset = ("SELECT pg_stat_statements_reset(0, 0, queryid) FROM pg_stat_statements "
             "WHERE query LIKE 'SELECT pg_sleep(%'")
    box.psql(reset)
    for _unused in range(times):
        box.psql("SELECT pg_sleep(%s)" % seconds)
    try:
        yield
    finally:
        box.psql(reset)


@contextlib.contextmanager
def redis_down(box):
    box.redis("SHUTDOWN", "SAVE")
    try:
        wait_for(lambda: box.redis("PING") != "PONG", what="Redis to stop")
        box.wait_health(503)
        yield
    finally:
        redis_dir = box["hb_redis_dir"]
        subprocess.run(["redis-server", "-"], input="include %s/redis.conf\ninclude %s/auth.conf\n" % (
            redis_dir, redis_dir), text=True, check=True, capture_output=True)
        wait_for(lambda: box.redis("PING") == "PONG", what="Redis to answer")
        box.wait_health(200)


def read_reports(run_dir):
    with open(os.path.join(run_dir, "diagnosis.json"), encoding="utf-8") as fh:
        report = json.load(fh)
    with open(os.path.join(run_dir, "diagnosis.md"), encoding="utf-8") as fh:
        markdown = fh.read()
    return report, markdown
