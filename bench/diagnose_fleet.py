"""Benchmark: playbooks/diagnose.yml across the staging fleet on 1, 2 and 5 hosts.

    make staging && .venv/bin/python bench/diagnose_fleet.py [--runs 3]

Needs the local staging fleet (make staging): SSH as deploy to separate hosts. The host sets are
the db host alone; an app host and the db host; the whole fleet (2 app, db, cache, backup).
One unmeasured run first opens the SSH connections (ControlPersist), as an operator's second
run finds them. Prints median, min and max wall time of each set and its growth against one host.
Not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

from diagnose import timed  # bench/diagnose.py: run, time, exit with the output on failure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGING = os.environ.get("HB_STAGING_DIR") or os.path.join(ROOT, ".staging")
INVENTORY = os.path.join(STAGING, "inventory.yml")
SETS = [
    ("staging-db-1", 1),
    ("staging-app-1,staging-db-1", 2),
    ("all", 5),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not os.path.exists(INVENTORY):
        sys.exit("no fleet inventory at %s: run `make staging` first" % INVENTORY)
    path = [os.path.join(ROOT, ".venv", "bin"), os.path.join(ROOT, ".tools", "node_modules", ".bin"),
            os.environ.get("PATH", "")]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_HOME=os.path.join(ROOT, ".ansible"), HB_STAGING_DIR=STAGING, PATH=os.pathsep.join(path))
    results = []
    with tempfile.TemporaryDirectory(prefix="hb-bench-fleet-") as tmp:
        def run(limit, tag):
            return timed(["ansible-playbook", "-i", INVENTORY, "playbooks/diagnose.yml", "--limit", limit,
                          "-e", "diagnose_run_dir=%s/%s" % (tmp, tag)], env)
        run("all", "warm-up")
        for limit, count in SETS:
            times = [run(limit, "%d-%d" % (count, i)) for i in range(args.runs)]
            results.append((count, limit, times))
    one = statistics.median(results[0][2])
    print("%-6s %-28s %5s %8s %8s %8s %7s" % ("hosts", "limit", "runs", "median", "min", "max", "growth"))
    for count, limit, times in results:
        median = statistics.median(times)
        print("%-6d %-28s %5d %7.2fs %7.2fs %7.2fs %6.2fx" % (count, limit, len(times), median, min(times),
                                                              max(times), median / one))
    with open("/proc/loadavg", encoding="ascii") as fh:
        load = " ".join(fh.read().split()[:3])
    print("growth = median / median on 1 host; %s cores; load average now: %s" % (os.cpu_count(), load))


if __name__ == "__main__":
    main()
