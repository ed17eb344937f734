"""Benchmark recover_db.yml against the bare commands on the sandbox (not run by the tests).

    HB_PORT_OFFSET=40 .venv/bin/python bench/recover_db.py            # pgbench scale 70 (~1 GB)
    HB_PORT_OFFSET=40 .venv/bin/python bench/recover_db.py --scale 5  # quick run

Generates a database (pgbench -i -s SCALE into the app database, beside health_data), takes a
pg_dump -Fc and a plain base backup, writes a marker batch after a target time, then times:

  1. the runbook's manual sequence: pm2 stop; pg_restore -c; pm2 restart
  2. bare pg_restore -j JOBS into a fresh database
  3. recover_db.yml recover_mode=dump (restore beside, validate, swap)
  4. a hand-run PITR (stop, move aside, copy base, recovery settings, start, wait) to the target time
  5. recover_db.yml recover_mode=pitr to the same target

and prints a table with ratios. Preserved copies are removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
importlib.import_module("conftest")  # makes the collection importable, puts the venv on PATH
import recoverdb_helpers as h  # noqa: E402
from harness import Sandbox, resolve_site, run_playbook  # noqa: E402


def timed(fn):
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def pg(site, name):
    return os.path.join(site["hb_pg_bindir"], name)


def sock(site):
    return ["-h", site["hb_pg_socket_dir"], "-p", str(site["hb_pg_port"])]


def pm2(site, *args):
    subprocess.run([site["hb_pm2_bin"], *args], env=dict(os.environ, PM2_HOME=site["hb_pm2_home"]),
                   check=True, capture_output=True)


def manual_dump_restore(box, dump):
    site = box.site
    pm2(site, "stop", site["hb_app_name"])
    h.as_postgres(site, [pg(site, "pg_restore"), *sock(site), "-d", site["hb_db_name"], "-c", "--if-exists", dump])
    pm2(site, "restart", site["hb_app_name"])
    box.wait_health(200, timeout=120)


def bare_restore(box, dump, jobs):
    site = box.site
    h.as_postgres(site, [pg(site, "createdb"), *sock(site), "bench_scratch"])
    try:
        return timed(lambda: h.as_postgres(site, [pg(site, "pg_restore"), *sock(site), "-d", "bench_scratch",
                                                  "-j", str(jobs), "--exit-on-error", dump]))
    finally:
        h.as_postgres(site, [pg(site, "dropdb"), *sock(site), "bench_scratch"])


def manual_pitr(box, base, target_time):
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
        pm2(site, "restart", site["hb_app_name"])
        box.wait_health(200, timeout=120)

    try:
        return timed(run)
    finally:
        h.as_postgres(site, [*ctl, "-m", "fast", "stop"], check=False)
        if os.path.exists(aside):
            shutil.rmtree(data, ignore_errors=True)
            os.rename(aside, data)
        h.as_postgres(site, [*ctl, "-l", os.path.join(site["hb_pg_log_dir"], "startup.log"), "start"])
        box.ensure_healthy()


def playbook(extravars):
    run = run_playbook("recover_db.yml", extravars)
    if run.rc != 0:
        raise SystemExit("recover_db.yml failed:\n" + run.stdout[-3000:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--scale", type=int, default=70, help="pgbench scale (70 ≈ 1 GB)")
    parser.add_argument("--jobs", type=int, default=2, help="pg_restore -j")
    parser.add_argument("--keep", action="store_true", help="keep preserved copies and pgbench tables")
    args = parser.parse_args()

    up = run_playbook("sandbox.yml", {"sandbox_state": "present"})
    if up.rc != 0:
        raise SystemExit("sandbox did not come up:\n" + up.stdout[-3000:])
    box = Sandbox(resolve_site())
    site = box.site
    print("generating pgbench scale %d ..." % args.scale, flush=True)
    h.as_postgres(site, [pg(site, "pgbench"), *sock(site), "-i", "-q", "-s", str(args.scale), site["hb_db_name"]])
    size = box.scalar("SELECT pg_size_pretty(pg_database_size(current_database()))")
    dump = h.make_dump(box)
    base = h.make_base_backup(box)
    time.sleep(1.1)
    target = h.iso_now()
    time.sleep(1.1)
    h.insert_batch(box, "bench-after-target", 10)
    box.psql("SELECT pg_switch_wal()")
    time.sleep(3)

    rows = []
    print("1/5 runbook manual sequence ...", flush=True)
    rows.append(("runbook: pm2 stop; pg_restore -c; pm2 restart", timed(lambda: manual_dump_restore(box, dump))))
    print("2/5 bare pg_restore ...", flush=True)
    rows.append(("bare pg_restore -j %d into a fresh database" % args.jobs, bare_restore(box, dump, args.jobs)))
    print("3/5 recover_db.yml dump ...", flush=True)
    rows.append(("recover_db.yml recover_mode=dump (-j %d)" % args.jobs,
                 timed(lambda: playbook({"recover_mode": "dump", "dump": dump, "jobs": args.jobs}))))
    print("4/5 hand-run PITR ...", flush=True)
    rows.append(("hand-run PITR (stop, aside, copy base, settings, replay)", manual_pitr(box, base, target)))
    print("5/5 recover_db.yml pitr ...", flush=True)
    rows.append(("recover_db.yml recover_mode=pitr", timed(lambda: playbook(
        {"recover_mode": "pitr", "target": {"time": target}, "backup": base}))))

    bare_restore_s, manual_pitr_s = rows[1][1], rows[3][1]
    print("\nrecover-db benchmark: database %s (pgbench scale %d + health_data), dump %d MB\n"
          % (size, args.scale, os.path.getsize(dump) // 2 ** 20))
    print("| %-58s | %9s | %-22s |" % ("what", "seconds", "ratio"))
    print("|%s|%s|%s|" % ("-" * 60, "-" * 11, "-" * 24))
    refs = [bare_restore_s, bare_restore_s, bare_restore_s, manual_pitr_s, manual_pitr_s]
    names = ["vs bare pg_restore", "vs bare pg_restore", "vs bare pg_restore", "vs hand-run PITR", "vs hand-run PITR"]
    for (what, secs), ref, name in zip(rows, refs, names):
        print("| %-58s | %9.1f | %5.2fx %-15s |" % (what, secs, secs / ref, name))

    if not args.keep:
        run_playbook("cleanup_preserved.yml", {"older_than_days": 0})
        h.as_postgres(site, [pg(site, "psql"), *sock(site), "-d", site["hb_db_name"], "-c",
                             "DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_history, "
                             "pgbench_tellers"])


if __name__ == "__main__":
    main()
