#!/usr/bin/env python3
"""Hold PostgreSQL sessions open for a drill: idle connections, or a lock in an open transaction.

Runs psql children (application_name from PGAPPNAME) that keep their session while stdin stays open,
until the stop file appears or --max-seconds pass. With --fill-evicting USER it takes every free
non-reserved slot and keeps them: sessions of USER (the app) are terminated and their slots taken (the drill
keeps USER from reconnecting meanwhile), so the app cannot connect, as long as every held session lives. Once one dies (PostgreSQL restarted by the
recovery, or sessions terminated) it stops filling, so the recovery is not undone.
Standard library and psql only.
"""

import argparse
import json
import os
import subprocess
import time

LOCK_SQL = "BEGIN;\nLOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE;\nSELECT 'locked';\n"
# Terminate USER's sessions, then count the normal slots free once this control session has gone (+1).
FILL_SQL = ("SELECT json_build_object('evicted', (SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE usename = %s), 'free', current_setting('max_connections')::int "
            "- current_setting('superuser_reserved_connections')::int - count(*) + 1) "
            "FROM pg_stat_activity WHERE backend_type = 'client backend'")
CONNECT_GRACE_S = 2.0


def psql_argv(args):
    return [args.psql, "-X", "-q", "-A", "-t", "-h", args.host, "-p", str(args.port), "-d", args.db]


def spawn(args, sql):
    proc = subprocess.Popen(psql_argv(args), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    proc.stdin.write(sql)
    proc.stdin.flush()
    return proc, time.monotonic()


def literal(text):
    return "'" + text.replace("'", "''") + "'"


def fill_step(args, held):
    """Evict the app's sessions and take the free slots; (evicted, opened)."""
    res = subprocess.run(psql_argv(args) + ["-c", FILL_SQL % literal(args.fill_evicting)],
                         capture_output=True, text=True, check=False, timeout=10)
    if res.returncode != 0:
        return 0, 0
    state = json.loads(res.stdout.strip().splitlines()[-1])
    # Evicted sessions still count until their backends exit: their slots are taken at the next step.
    opened = max(int(state["free"]), 0)
    for _ in range(opened):
        held.append(spawn(args, "SELECT 1;\n"))
    return int(state["evicted"]), opened


def lost_a_session(held):
    """True when a session that had connected is gone; sessions that never connected are dropped."""
    now = time.monotonic()
    for item in list(held):
        proc, started = item
        if proc.poll() is not None:
            if now - started < CONNECT_GRACE_S:
                held.remove(item)
            else:
                return True
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--psql", required=True)
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--connections", type=int, default=0)
    ap.add_argument("--fill-evicting", metavar="USER")
    ap.add_argument("--lock-table")
    ap.add_argument("--max-seconds", type=float, default=900)
    args = ap.parse_args()
    held = []
    if args.lock_table:
        held.append(spawn(args, LOCK_SQL % args.lock_table))
    for _ in range(args.connections):
        held.append(spawn(args, "SELECT 1;\n"))
    filling = bool(args.fill_evicting)
    deadline = time.monotonic() + args.max_seconds
    while not os.path.exists(args.stop) and time.monotonic() < deadline:
        if filling:
            if lost_a_session(held):
                filling = False
            else:
                fill_step(args, held)
        time.sleep(0.3)
    for proc, _started in held:
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
