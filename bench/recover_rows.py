"""Benchmark rows mode against a whole-cluster PITR to the same target on the same database (not run by the tests).

    HB_PORT_OFFSET=40 .venv/bin/python bench/recover_rows.py                   # the sandbox as it is
    HB_PORT_OFFSET=40 .venv/bin/python bench/recover_rows.py --grow 1000000    # health_data 1.1 M rows

Takes a base backup, notes a target time, then deletes --delete health_data rows and 3 users and updates
--update rows wrongly, and writes a marker batch of --later rows after the damage (good writes of other
users). Then times, on the same target:

  1. recover_db.yml recover_mode=rows --check: time to the plan (copy restored, compared, plan written)
  2. recover_db.yml recover_mode=rows mode=both: time to the applied, verified fix
  3. recover_db.yml recover_mode=pitr: the whole-cluster PITR the runbook would do

and prints a table: seconds, what came back, what was lost (the later batch), and /health downtime seen by a
probe every 0.2 s. Preserved copies (data directory, pre_rows table) are left for cleanup_preserved.yml.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
importlib.import_module("conftest")  # makes the collection importable, puts the venv on PATH
import recoverdb_helpers as h  # noqa: E402
from harness import Sandbox, resolve_site, run_playbook  # noqa: E402

LATER = "bench-rows-later"


class Probe(threading.Thread):
    """/health every 0.2 s; ``down_s`` sums the time between a non-200 answer and the next 200."""

    def __init__(self, box):
        super().__init__(daemon=True)
        self.box, self.halt, self.answers = box, threading.Event(), []

    def run(self):
        while not self.halt.is_set():
            self.answers.append((time.monotonic(), self.box.http("/health", timeout=2)[0]))
            time.sleep(0.2)

    def down_s(self):
        down, since = 0.0, None
        for t, status in self.answers:
            if status != 200 and since is None:
                since = t
            elif status == 200 and since is not None:
                down, since = down + t - since, None
        return round(down + (self.answers[-1][0] - since if since is not None else 0.0), 1)


def timed_run(box, extravars, check=False):
    probe = Probe(box)
    probe.start()
    start = time.monotonic()
    run = run_playbook("recover_db.yml", extravars, check=check)
    seconds = time.monotonic() - start
    probe.halt.set()
    probe.join(5)
    if run.rc != 0:
        raise SystemExit("recover_db.yml %s failed:\n%s" % (extravars.get("recover_mode"), run.stdout[-4000:]))
    return seconds, probe.down_s()


def state(box, deleted, damaged):
    out = box.psql("SELECT json_build_object('deleted_back', (SELECT count(*) FROM health_data WHERE id IN (%s)), "
                   "'damaged_fixed', (SELECT count(*) FROM health_data WHERE id IN (%s) AND value >= 0), "
                   "'later', (SELECT count(*) FROM health_data WHERE metric = '%s'))"
                   % (",".join(deleted), ",".join(damaged), LATER))
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--delete", type=int, default=500)
    ap.add_argument("--update", type=int, default=20)
    ap.add_argument("--later", type=int, default=200)
    ap.add_argument("--grow", type=int, default=0, help="insert this many extra health_data rows first")
    args = ap.parse_args()
    up = run_playbook("sandbox.yml", {"sandbox_state": "present"})
    assert up.rc == 0, up.stdout[-3000:]
    box = Sandbox(resolve_site())
    box.wait_health(200)
    if args.grow:
        box.psql("INSERT INTO health_data (user_id, metric, value) SELECT 1 + g %% 100, 'bench-grow', g %% 1000 "
                 "FROM generate_series(1, %d) g; ANALYZE health_data;" % args.grow)
    rows = box.scalar("SELECT count(*) FROM health_data")
    size = box.scalar("SELECT pg_size_pretty(pg_database_size(current_database()))")
    h.make_base_backup(box)
    time.sleep(1.1)
    target = {"time": h.iso_now()}
    time.sleep(1.1)
    users = box.psql("SELECT string_agg(id::text, ',') FROM (SELECT id FROM users WHERE id > 800 AND NOT EXISTS "
                     "(SELECT 1 FROM health_data d WHERE d.user_id = users.id AND d.metric = 'bench-grow') "
                     "ORDER BY id LIMIT 3) u")
    deleted = box.psql("SELECT string_agg(id::text, ',') FROM (SELECT id FROM health_data WHERE user_id IN (%s) "
                       "UNION ALL (SELECT id FROM health_data WHERE user_id NOT IN (%s) AND metric NOT LIKE 'bench%%' "
                       "ORDER BY id LIMIT greatest(0, %d - (SELECT count(*) FROM health_data WHERE user_id IN (%s)))"
                       ")) s" % (users, users, args.delete, users)).split(",")
    damaged = box.psql("SELECT string_agg(id::text, ',') FROM (SELECT id FROM health_data WHERE user_id NOT IN (%s) "
                       "AND value >= 0 AND metric NOT LIKE 'bench%%' ORDER BY id DESC LIMIT %d) s"
                       % (users, args.update)).split(",")
    box.psql("BEGIN; UPDATE health_data SET value = -1 WHERE id IN (%s); DELETE FROM health_data WHERE id IN (%s); "
             "DELETE FROM users WHERE id IN (%s); COMMIT;" % (",".join(damaged), ",".join(deleted), users))
    batch = h.insert_batch(box, LATER, args.later)
    tli = int(box.scalar("SELECT timeline_id FROM pg_control_checkpoint()"))
    box.psql("SELECT pg_switch_wal()")
    seg = os.path.join(box["hb_wal_archive_dir"], h.segment_of(batch["lsn"], tli))
    while not os.path.exists(seg):
        time.sleep(0.2)
    rows_vars = {"recover_mode": "rows", "target": target, "tables": ["users", "health_data"], "mode": "both"}
    table = []
    secs, down = timed_run(box, rows_vars, check=True)
    table.append(("rows mode --check (time to the plan)", secs, down, state(box, deleted, damaged)))
    secs, down = timed_run(box, rows_vars)
    table.append(("rows mode both (time to the applied fix)", secs, down, state(box, deleted, damaged)))
    secs, down = timed_run(box, {"recover_mode": "pitr", "target": target, "recover_db_health_retries": 60})
    table.append(("whole-cluster PITR, same target", secs, down, state(box, deleted, damaged)))
    print("\nhealth_data %s rows, database %s; damage: %d deleted (3 users' rows among them) + 3 users, %d updated; "
          "%d good rows written after it\n" % (rows, size, len(deleted), len(damaged), args.later))
    base = table[1][1]
    print("| what | seconds | ratio | /health down s | deleted back | updated fixed | later rows kept |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, secs, down, st in table:
        print("| %s | %.1f | %.2f× rows fix | %.1f | %d/%d | %d/%d | %d/%d |" % (
            name, secs, secs / base, down, st["deleted_back"], len(deleted), st["damaged_fixed"], len(damaged),
            st["later"], args.later))


if __name__ == "__main__":
    main()
