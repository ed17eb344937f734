"""Read throughput of backup verification against bare `sha256sum` on the same files.

    python bench/verify.py [--backup-dir .sandbox/backups] [--repeat 3]

For the newest dump: sha256sum vs the catalogue's sha256 (Python hashlib) vs the full read
(`pg_restore -f /dev/null`); for the newest base backup: `sha256sum` of every file vs
`pg_verifybackup -n` (manifest checksums). Prints MB/s and the ratio to sha256sum (best of N).
"""

from __future__ import annotations

import argparse
import glob
import importlib
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
importlib.import_module("conftest")  # makes ansible_collections.healthbutler.recovery importable

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_catalog as bc  # noqa: E402


def best(fn, repeat):
    times = []
    for _unused in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run(argv):
    proc = subprocess.run(argv, capture_output=True, check=False)
    if proc.returncode != 0:
        raise SystemExit("%s failed: %s" % (argv[0], proc.stderr.decode()[-500:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backup-dir", default=os.path.join(ROOT, ".sandbox", "backups"))
    parser.add_argument("--bindir", default="/usr/lib/postgresql/15/bin")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    catalog = bc.scan(args.backup_dir, verify_checksums=False)
    dump, base = bc.newest(catalog, "dump"), bc.newest(catalog, "base")
    if not dump or not base:
        raise SystemExit("need a dump and a base backup in %s (run playbooks/backup.yml)" % args.backup_dir)
    rows = []
    size = os.path.getsize(dump["path"])
    bare = best(lambda: run(["sha256sum", dump["path"]]), args.repeat)
    rows.append(("dump %s" % dump["name"], "sha256sum (bare)", size, bare, bare))
    rows.append(("", "sidecar check (hashlib)", size, best(lambda: bc.sha256_file(dump["path"]), args.repeat), bare))
    rows.append(("", "full read pg_restore -f /dev/null", size,
                 best(lambda: run([os.path.join(args.bindir, "pg_restore"), "-f", "/dev/null", dump["path"]]),
                      args.repeat), bare))
    files = [f for f in glob.glob(os.path.join(base["path"], "**"), recursive=True) if os.path.isfile(f)]
    total = sum(os.path.getsize(f) for f in files)
    bare = best(lambda: run(["sha256sum"] + files), args.repeat)
    rows.append(("base %s" % base["name"], "sha256sum of every file (bare)", total, bare, bare))
    rows.append(("", "pg_verifybackup -n", total,
                 best(lambda: run([os.path.join(args.bindir, "pg_verifybackup"), "-n", base["path"]]), args.repeat),
                 bare))
    print("%-42s %-34s %10s %9s %9s %8s" % ("backup", "method", "MB", "seconds", "MB/s", "vs bare"))
    for what, method, nbytes, secs, bare_secs in rows:
        mb = nbytes / 1e6
        print("%-42s %-34s %10.1f %9.3f %9.1f %7.2fx" % (what[:42], method, mb, secs, mb / secs, secs / bare_secs))


if __name__ == "__main__":
    main()
