#!/usr/bin/env python3
"""Hold PostgreSQL sessions open for a drill: idle connections, or a lock in an open transaction.

Runs psql children (application_name from PGAPPNAME) that keep their session while stdin stays open,
until the stop file appears or --max-seconds pass. Standard library and psql only.
"""

import argparse
import os
import subprocess
import time

LOCK_SQL = "BEGIN;\nLOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE;\nSELECT 'locked';\n"


def spawn(args, sql):
    proc = subprocess.Popen([args.psql, "-X", "-q", "-A", "-t", "-h", args.host, "-p", str(args.port), "-d", args.db],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    proc.stdin.write(sql)
    proc.stdin.flush()
    return proc


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--psql", required=True)
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--connections", type=int, default=0)
    ap.add_argument("--lock-table")
    ap.add_argument("--max-seconds", type=float, default=900)
    args = ap.parse_args()
    procs = []
    if args.lock_table:
        procs.append(spawn(args, LOCK_SQL % args.lock_table))
    for _ in range(args.connections):
        procs.append(spawn(args, "SELECT 1;\n"))
    deadline = time.monotonic() + args.max_seconds
    while not os.path.exists(args.stop) and time.monotonic() < deadline:
        time.sleep(0.2)
    for proc in procs:
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
