"""Hold PostgreSQL sessions open for a drill: idle connections, or a lock in an open transaction.

Runs psql children (application_name from PGAPPNAME) that keep their session while stdin stays open,
until the stop file appears or --max-seconds pass. With --fill-evicting USER it takes every free
non-reserved slot and keeps them taken: sessions of USER (the app) are terminated and their slots taken
(the drill keeps USER from reconnecting meanwhile). Once the server drops any of its sessions (PostgreSQL
restarted by the recovery, or the sessions terminated) it stops filling, so the recovery is not undone.
Standard library and psql only.
"""

import argparse
import json
import os
import subprocess
import time

LOCK_SQL = "BEGIN;\nLOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE;\nSELECT 'locked';\n"
# Terminate USER's sessions; count the normal slots free once this control session has gone (+1), the
# holder's own sessions, and when the server started (a restart drops every session).
FILL_SQL = ("SELECT json_build_object('evicted', (SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE usename = %s), 'free', current_setting('max_connections')::int "
            "- current_setting('superuser_reserved_connections')::int - count(*) + 1, "
            "'ours', count(*) FILTER (WHERE application_name = current_setting('application_name') "
            "AND pid <> pg_backend_pid()), 'started', pg_postmaster_start_time()::text) "
            "FROM pg_stat_activity WHERE backend_type = 'client backend'")


def psql_argv(args):
    return [args.psql, "-X", "-q", "-A", "-t", "-h", args.host, "-p", str(args.port), "-d", args.db]


def spawn(args, sql):
    proc = subprocess.Popen(psql_argv(args), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    proc.stdin.write(sql)
    proc.stdin.flush()
    return proc


def literal(text):
    return "'" + text.replace("'", "''") + "'"


class Filler:
    """Keeps every normal slot taken while the sessions it holds live (psql does not notice a dropped
    session while it waits on stdin, so the server says whether they live: same start time, none gone)."""

    def __init__(self, args, held):
        self.args, self.held = args, held
        self.started, self.peak, self.active = None, 0, True

    def step(self):
        res = subprocess.run(psql_argv(self.args) + ["-c", FILL_SQL % literal(self.args.fill_evicting)],
                             capture_output=True, text=True, check=False, timeout=10)
        if res.returncode != 0:
            return
        state = json.loads(res.stdout.strip().splitlines()[-1])
        if self.started is None:
            self.started = state["started"]
        if state["started"] != self.started or int(state["ours"]) < self.peak:
            self.active = False  # the recovery dropped them: do not undo it
            return
        self.peak = max(self.peak, int(state["ours"]))
        # Evicted sessions still count until their backends exit: their slots are taken at the next step.
        for _slot in range(max(int(state["free"]), 0)):
            self.held.append(spawn(self.args, "SELECT 1;\n"))


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
    for _index in range(args.connections):
        held.append(spawn(args, "SELECT 1;\n"))
    filler = Filler(args, held) if args.fill_evicting else None
    deadline = time.monotonic() + args.max_seconds
    while not os.path.exists(args.stop) and time.monotonic() < deadline:
        if filler and filler.active:
            filler.step()
        time.sleep(0.3)
    for proc in held:
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
