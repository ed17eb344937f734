"""Real faults outside the drill catalogue, for the cause-and-impact tests.

Each is a context manager: inject, yield, put the sandbox back (in ``finally``), flush the app logs.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys

from diagnose_helpers import redis_down
from harness import wait_for

from ansible_collections.healthbutler.recovery.plugins.module_utils import pm2

FAKE_DB_PASSWORD = "WrongPassFromADeploy7781"
FAKE_REDIS_PASSWORD = "WrongRedisPass0042abc"
BAD_DB_HOST = "db-primary.hb-sandbox.invalid"
QUIET = "SET pg_stat_statements.track = 'none'; SET log_min_duration_statement = -1; SET log_statement = 'none';\n"


def restart_app(box):
    assert box.pm2("restart", box["hb_app_name"]).returncode == 0


@contextlib.contextmanager
def env_edited(box, pattern, replacement, health=503):
    """The app's .env with one value changed (as a bad deploy leaves it), the app restarted on it."""
    path = box["hb_app_env_file"]
    with open(path, "rb") as fh:
        original = fh.read()
    st = os.stat(path)
    text = original.decode()
    changed = re.sub(pattern, replacement, text, count=1, flags=re.MULTILINE)
    assert changed != text, "pattern %r not in .env" % pattern
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(changed)
        restart_app(box)
        box.wait_health(health)
        for _unused in range(3):  # users keep calling: the failure is logged more than once
            box.http("/health")
        yield
    finally:
        with open(path, "wb") as fh:
            fh.write(original)
        os.chmod(path, st.st_mode & 0o7777)
        for name in os.listdir(box["hb_app_dir"]):  # copies restore-files keeps (they dirty the app's tree)
            if name.startswith(".env.pre_restore_"):
                os.remove(os.path.join(box["hb_app_dir"], name))
        restart_app(box)
        box.wait_health(200)
        box.flush_app_logs()


def wrong_db_password_in_env(box):
    return env_edited(box, r"^(DATABASE_URL=postgresql://[^:]+:)[^@]+@", r"\g<1>%s@" % FAKE_DB_PASSWORD)


def db_host_not_found_in_env(box):
    return env_edited(box, r"^(DATABASE_URL=postgresql://[^@]+@)127\.0\.0\.1:", r"\g<1>%s:" % BAD_DB_HOST)


def wrong_redis_password_in_env(box):
    return env_edited(box, r"^(REDIS_URL=redis://:)[^@]+@", r"\g<1>%s@" % FAKE_REDIS_PASSWORD)


@contextlib.contextmanager
def port_held(box):
    """Another process listens on the app's port; the app, restarted, dies of EADDRINUSE until PM2 gives up.

    Yields the holder's pid.
    """
    name, port = box["hb_app_name"], int(box["hb_app_port"])
    assert box.pm2("stop", name).returncode == 0
    holder = None
    try:
        wait_for(lambda: not _listening(port), what="port %s free" % port)
        holder = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _listening(port), what="the holder to listen on %s" % port)
        before = box.pm2_process()["pm2_env"]["restart_time"]
        restart_app(box)

        def gave_up():
            proc = box.pm2_process()
            env = proc["pm2_env"]
            return (env["status"] == "errored" or pm2.gave_up(env["status"], proc.get("pid"), env)) and \
                env["restart_time"] > before
        wait_for(gave_up, timeout=90, what="PM2 to give up on the EADDRINUSE crash loop")
        yield holder.pid
    finally:
        if holder:
            holder.terminate()
            holder.wait(timeout=10)
        wait_for(lambda: not _listening(port), what="port %s free again" % port)
        restart_app(box)
        box.wait_health(200)
        box.flush_app_logs()


def _listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def server_read_only(box):
    """ALTER SYSTEM SET default_transaction_read_only = on, reloaded: every write refused, reads fine."""
    box.psql("ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf();")
    try:
        wait_for(lambda: box.psql("SHOW default_transaction_read_only") == "on", what="read-only in effect")
        yield
    finally:
        box.psql("SET default_transaction_read_only = off; ALTER SYSTEM RESET default_transaction_read_only; "
                 "SELECT pg_reload_conf();")
        wait_for(lambda: box.psql("SHOW default_transaction_read_only") == "off", what="read-write again")
        box.wait_health(200)
        box.flush_app_logs()


@contextlib.contextmanager
def role_read_only(box):
    """ALTER ROLE <app user> SET default_transaction_read_only = on: the app's new sessions cannot write."""
    user = box["hb_db_app_user"]
    box.psql('ALTER ROLE "%s" SET default_transaction_read_only = on;' % user)
    try:
        restart_app(box)  # its pool reconnects with the role's setting
        box.wait_health(200)
        yield
    finally:
        box.psql('ALTER ROLE "%s" RESET default_transaction_read_only;' % user)
        restart_app(box)
        box.wait_health(200)
        box.flush_app_logs()


@contextlib.contextmanager
def role_password_changed(box):
    """The app role's password is changed on the server (not in the .env): the app cannot log in."""
    user = box["hb_db_app_user"]
    box.psql(QUIET + "ALTER ROLE \"%s\" PASSWORD '%s';" % (user, FAKE_DB_PASSWORD))
    try:
        restart_app(box)  # a fresh pool: every new connection is refused
        box.wait_health(503)
        yield
    finally:
        box.psql(QUIET + "ALTER ROLE \"%s\" PASSWORD '%s';" % (user, box.credential("db_app")))
        restart_app(box)
        box.wait_health(200)
        box.flush_app_logs()


@contextlib.contextmanager
def redis_stopped(box):
    """Redis shut down (diagnose_helpers.redis_down), the app's Redis errors flushed afterwards."""
    try:
        with redis_down(box):
            yield
    finally:
        box.flush_app_logs()
