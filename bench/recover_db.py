"""Benchmark recover_db.yml against the bare commands on the sandbox (not run by the tests).

    HB_PORT_OFFSET=40 .venv/bin/python bench/recover_db.py                 # 2 GB of realistic data, 3 runs
    HB_PORT_OFFSET=40 .venv/bin/python bench/recover_db.py --size-mb 200   # quick run

Generates realistic data in the app database (bench_users, bench_events: one row per reading with a JSON
payload of random values and two indexes, bench_notes: wide text rows; nothing compresses like pgbench's
blank-padded rows, so the dump is a sizeable fraction of the database). Takes a pg_dump -Fc and a base backup,
writes a marker batch after a target time, then times, each --runs times (median, min, max):

  - bare dump sequence: pm2 stop; createdb; pg_restore -j N --exit-on-error into it; swap by rename;
    pm2 start; wait for /health 200 (what an engineer does anyway, with no check at all)
  - recover_db.yml recover_mode=dump (the same, plus pre-flight, validation, preserved copy, record)
  - hand-run PITR: pm2 stop; stop PostgreSQL, move the data directory aside, copy the base backup, recovery
    settings, start, wait for promotion; pm2 start; /health 200
  - recover_db.yml recover_mode=pitr to the same target

The collection's rows also give its app downtime, from recovery.json (maintenance on to /health 200 with
maintenance off); the bare sequences' downtime is their whole run. Preserved copies are removed after each run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
importlib.import_module("conftest")  # makes the collection importable, puts the venv on PATH
import recoverdb_helpers as h  # noqa: E402
from harness import Sandbox, resolve_site, run_playbook  # noqa: E402

BENCH_TABLES = ("bench_notes", "bench_events", "bench_users")
# One batch of events: random readings in a JSON payload (about 500 bytes a row with its indexes and TOAST, measured).
EVENTS_BATCH = """
INSERT INTO bench_events (user_id, metric, recorded_at, payload)
SELECT 1 + (random() * 49999)::int,
       (ARRAY['heart_rate','steps','sleep','weight','blood_pressure','glucose'])[1 + (random() * 5)::int],
       now() - random() * interval '730 days',
       jsonb_build_object('value', round((random() * 200)::numeric, 2), 'device', md5(random()::text),
                          'session', gen_random_uuid(), 'tags', jsonb_build_array(md5(random()::text)),
                          'note', substr(md5(random()::text) || md5(random()::text), 1, 20 + (random() * 40)::int))
FROM generate_series(1, %d)
"""
SCHEMA = """
DROP TABLE IF EXISTS bench_notes, bench_events, bench_users;
CREATE TABLE bench_users (id int PRIMARY KEY, email text UNIQUE NOT NULL, name text, created_at timestamptz,
                          profile jsonb);
INSERT INTO bench_users
SELECT g, 'user' || g || '@example.invalid', md5(g::text), now() - random() * interval '3 years',
       jsonb_build_object('height', 150 + (random() * 50)::int, 'tz', md5(random()::text))
FROM generate_series(1, 50000) g;
CREATE TABLE bench_events (id bigserial PRIMARY KEY, user_id int NOT NULL REFERENCES bench_users,
                           metric text NOT NULL, recorded_at timestamptz NOT NULL, payload jsonb NOT NULL);
CREATE TABLE bench_notes (id bigserial PRIMARY KEY, user_id int NOT NULL, body text NOT NULL);
"""
NOTES_BATCH = """
INSERT INTO bench_notes (user_id, body)
SELECT 1 + (random() * 49999)::int, string_agg(md5(random()::text), ' ')
FROM generate_series(1, %d) n, generate_series(1, 24) w GROUP BY n
"""
INDEXES = """
CREATE INDEX bench_events_user_time ON bench_events (user_id, recorded_at);
CREATE INDEX bench_events_metric_time ON bench_events (metric, recorded_at);
ANALYZE bench_users, bench_events, bench_notes;
"""


def timed(fn):
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def pg(site, name):
    return os.path.join(site["hb_pg_bindir"], name)


def sock(site):
    return ["-h", site["hb_pg_socket_dir"], "-p", str(site["hb_pg_port"])]


def sql(site, text, db=None):
    h.as_postgres(site, [pg(site, "psql"), *sock(site), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                         db or site["hb_db_name"], "-c", text])


def pm2(site, *args):
    subprocess.run([site["hb_pm2_bin"], *args], env=dict(os.environ, PM2_HOME=site["hb_pm2_home"]),
                   check=True, capture_output=True)


def generate(box, size_mb):
    """Fill the app database with about ``size_mb`` MB of bench tables (80 % events, 20 % notes)."""
    site = box.site
    sql(site, SCHEMA)
    events_rows, notes_rows = int(size_mb * 0.8 * 1024 * 1024 / 500), int(size_mb * 0.2 * 1024 * 1024 / 1350)
    batch = 500000
    for done in range(0, events_rows, batch):
        sql(site, EVENTS_BATCH % min(batch, events_rows - done))
    for done in range(0, notes_rows, batch // 5):
        sql(site, NOTES_BATCH % min(batch // 5, notes_rows - done))
    sql(site, INDEXES)


def bare_dump_sequence(box, dump, jobs):
    """pm2 stop; createdb; pg_restore -j into it; swap; pm2 start; /health 200. The old database is dropped after."""
    site, db = box.site, box.site["hb_db_name"]

    def run():
        pm2(site, "stop", site["hb_app_name"])
        h.as_postgres(site, [pg(site, "createdb"), *sock(site), "-O", site["hb_db_app_user"], "bench_scratch"])
        h.as_postgres(site, [pg(site, "pg_restore"), *sock(site), "-d", "bench_scratch", "-j", str(jobs),
                             "--exit-on-error", dump])
        sql(site, "ALTER DATABASE %s RENAME TO bench_old" % db, db="postgres")
        sql(site, "ALTER DATABASE bench_scratch RENAME TO %s" % db, db="postgres")
        pm2(site, "start", site["hb_app_name"])
        box.wait_health(200, timeout=300)

    try:
        return timed(run)
    finally:
        sql(site, "DROP DATABASE IF EXISTS bench_old", db="postgres")


def hand_run_pitr(box, base, target_time):
    """The hand-run sequence on the same base backup and WAL; the original comes back afterwards."""
    site = box.site
    data = site["hb_pg_data_dir"]
    aside = data + ".bench_aside"
    ctl = [pg(site, "pg_ctl"), "-D", data, "-w", "-t", "3600"]

    def run():
        pm2(site, "stop", site["hb_app_name"])
        h.as_postgres(site, [*ctl, "-m", "fast", "stop"])
        os.rename(data, aside)
        subprocess.run(["cp", "-a", os.path.join(site["hb_backup_dir"], "base", base), data], check=True)
        with open(os.path.join(data, "postgresql.auto.conf"), "a", encoding="utf-8") as fh:
            fh.write("restore_command = 'cp \"%s/%%f\" \"%%p\"'\nrecovery_target_time = '%s'\n"
                     "recovery_target_timeline = 'current'\nrecovery_target_action = 'promote'\n"
                     % (site["hb_wal_archive_dir"], target_time.replace("T", " ").replace("Z", "+00")))
        open(os.path.join(data, "recovery.signal"), "w").close()
        subprocess.run(["chown", "-R", site["hb_pg_os_user"], data], check=True)
        h.as_postgres(site, [*ctl, "-l", os.path.join(site["hb_pg_log_dir"], "startup.log"), "start"])
        while box.scalar("SELECT pg_is_in_recovery()") != "f":
            time.sleep(0.2)
        pm2(site, "start", site["hb_app_name"])
        box.wait_health(200, timeout=300)

    try:
        return timed(run)
    finally:
        h.as_postgres(site, [*ctl, "-m", "fast", "stop"], check=False)
        if os.path.exists(aside):
            shutil.rmtree(data, ignore_errors=True)
            os.rename(aside, data)
        h.as_postgres(site, [*ctl, "-l", os.path.join(site["hb_pg_log_dir"], "startup.log"), "start"])
        box.ensure_healthy()


def collection(box, extravars):
    """recover_db.yml; returns (wall seconds, app downtime from recovery.json). Preserved copies removed after."""
    start = time.monotonic()
    run = run_playbook("recover_db.yml", extravars)
    wall = time.monotonic() - start
    if run.rc != 0:
        raise SystemExit("recover_db.yml failed:\n" + run.stdout[-3000:])
    root = box["hb_run_root"]
    latest = sorted(d for d in os.listdir(root) if d.endswith("-recover-db"))[-1]
    with open(os.path.join(root, latest, "recovery.json"), encoding="utf-8") as fh:
        record = json.load(fh)
    clean = run_playbook("cleanup_preserved.yml", {"older_than_days": 0})
    if clean.rc != 0:
        raise SystemExit("cleanup_preserved.yml failed:\n" + clean.stdout[-3000:])
    return wall, float(record["downtime_s"])


def spread(values):
    return statistics.median(values), min(values), max(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--size-mb", type=int, default=2048, help="size of the generated data (default 2 GB)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each sequence (median, min, max)")
    parser.add_argument("--jobs", type=int, default=2, help="pg_restore -j")
    parser.add_argument("--keep", action="store_true", help="keep the bench tables")
    parser.add_argument("--reuse", action="store_true",
                        help="keep bench tables left by --keep instead of generating them again (any size)")
    args = parser.parse_args()

    up = run_playbook("sandbox.yml", {"sandbox_state": "present"})
    if up.rc != 0:
        raise SystemExit("sandbox did not come up:\n" + up.stdout[-3000:])
    box = Sandbox(resolve_site())
    site = box.site
    print("generating about %d MB of realistic data (or reusing it) ..." % args.size_mb, flush=True)
    reuse = args.reuse and box.scalar("SELECT to_regclass('bench_events') IS NOT NULL") == "t"
    took = 0.0 if reuse else timed(lambda: generate(box, args.size_mb))
    size = box.scalar("SELECT pg_size_pretty(pg_database_size(current_database()))")
    dump = h.make_dump(box)
    base = h.make_base_backup(box)
    time.sleep(1.1)
    target = h.iso_now()
    time.sleep(1.1)
    h.insert_batch(box, "bench-after-target", 10)
    box.psql("SELECT pg_switch_wal()")
    time.sleep(3)
    print("generated %s in %.0f s; dump %d MB" % (size, took, os.path.getsize(dump) // 2 ** 20), flush=True)

    sequences = {
        "bare dump": lambda: (bare_dump_sequence(box, dump, args.jobs), None),
        "collection dump": lambda: collection(box, {"recover_mode": "dump", "dump": dump, "jobs": args.jobs}),
        "bare pitr": lambda: (hand_run_pitr(box, base, target), None),
        "collection pitr": lambda: collection(box, {"recover_mode": "pitr", "target": {"time": target},
                                                    "backup": base}),
    }
    got = {name: [] for name in sequences}
    for i in range(args.runs):
        for name, fn in sequences.items():  # interleaved, so a slow moment of the machine hits every sequence
            print("run %d/%d: %s ..." % (i + 1, args.runs, name), flush=True)
            got[name].append(fn())

    print("\nrecover-db benchmark: database %s (%d MB asked), dump %d MB, pg_restore -j %d, %d runs each\n"
          % (size, args.size_mb, os.path.getsize(dump) // 2 ** 20, args.jobs, args.runs))
    heads = ("what", "median s", "min s", "max s", "ratio (medians)", "app downtime s (median)")
    print("| %-40s | %8s | %8s | %8s | %-22s | %-26s |" % heads)
    print("|%s|%s|%s|%s|%s|%s|" % ("-" * 42, "-" * 10, "-" * 10, "-" * 10, "-" * 24, "-" * 28))
    row = "| %-40s | %8.1f | %8.1f | %8.1f | %-22s | %-26s |"
    for mode in ("dump", "pitr"):
        bare = spread([t for t, _d in got["bare " + mode]])
        mine = spread([t for t, _d in got["collection " + mode]])
        down = statistics.median(d for _t, d in got["collection " + mode])
        label = "pm2 stop .. pg_restore .. swap .. /health" if mode == "dump" else "hand-run PITR incl. app stop/start"
        print(row % ((label,) + bare + ("1.00x", "%.1f (all of it)" % bare[0])))
        ratio = "%.2fx (+%.1f s)" % (mine[0] / bare[0], mine[0] - bare[0])
        print(row % (("recover_db.yml recover_mode=%s" % mode,) + mine
                     + (ratio, "%.1f (%.2fx bare)" % (down, down / bare[0]))))

    if not args.keep:
        sql(site, "DROP TABLE IF EXISTS %s" % ", ".join(BENCH_TABLES))


if __name__ == "__main__":
    main()
