"""Benchmark: playbooks/diagnose.yml versus the runbook's own diagnosis commands in bash.

    HB_PORT_OFFSET=<n> .venv/bin/python bench/diagnose.py [--runs 3]

Needs a running sandbox. The bash side is what an engineer types from the runbook (pm2 status,
netstat/ss, psql count, free, top -bn1, curl -w) and reads by eye; the playbook side gathers
more (locks, statements, logs, Redis, backups), classifies and writes two reports.
Prints a table with the median wall time of each and the ratio. Not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OFFSET = int(os.environ.get("HB_PORT_OFFSET", "0"))
SANDBOX = os.path.realpath(os.environ.get("HB_SANDBOX_DIR") or os.path.join(ROOT, ".sandbox"))
PM2 = os.path.join(ROOT, ".tools", "node_modules", ".bin", "pm2")

RUNBOOK_SCRIPT = r"""
set -u
pm2 status
(netstat -tlnp 2>/dev/null || ss -tlnp) | grep ":$APP_PORT"
psql -X -h 127.0.0.1 -p "$PG_PORT" -U hb_monitor -d health_butler -c "SELECT count(*) FROM pg_stat_activity;"
psql -X -h 127.0.0.1 -p "$PG_PORT" -U hb_monitor -d health_butler \
  -c "SELECT * FROM pg_stat_statements ORDER BY mean_exec_time DESC LIMIT 10;" >/dev/null
psql -X -h 127.0.0.1 -p "$PG_PORT" -U hb_monitor -d health_butler -c "SELECT * FROM pg_locks WHERE NOT granted;"
free -h
top -bn1 | head -15
curl -s -o /dev/null -w "status %{http_code} total %{time_total}s\n" "http://127.0.0.1:$APP_PORT/health"
"""


FLOOR_PLAY = """- name: The Ansible floor
  hosts: localhost
  gather_facts: false
  tasks:
    - name: One ping
      ansible.builtin.ping:
"""


def credential(name):
    with open(os.path.join(SANDBOX, "credentials", name), encoding="utf-8") as fh:
        return fh.read().split()[0]


def timed(argv, env):
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit("failed (rc=%s): %s\n%s" % (proc.returncode, " ".join(argv), (proc.stdout + proc.stderr)[-2000:]))
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), HB_PORT_OFFSET=str(OFFSET),
                PATH=os.pathsep.join([os.path.join(ROOT, ".venv", "bin"), os.path.dirname(PM2),
                                      "/usr/lib/postgresql/15/bin", os.environ.get("PATH", "")]))
    bash_env = dict(base, PM2_HOME=os.path.join(SANDBOX, "pm2"), APP_PORT=str(53000 + OFFSET),
                    PG_PORT=str(55432 + OFFSET), PGPASSWORD=credential("db_monitor"))
    floor = "ansible-playbook, one ping"
    results = {"runbook bash (6 commands)": [], floor: [], "playbooks/diagnose.yml": []}
    with tempfile.TemporaryDirectory(prefix="hb-bench-") as tmp:
        floor_play = os.path.join(tmp, "floor.yml")
        with open(floor_play, "w", encoding="utf-8") as fh:
            fh.write(FLOOR_PLAY)
        for i in range(args.runs):  # interleaved, so a slow moment of the machine hits every row
            results["runbook bash (6 commands)"].append(timed(["bash", "-c", RUNBOOK_SCRIPT], bash_env))
            results[floor].append(timed(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
                                         "ansible_python_interpreter=/usr/bin/python3", floor_play], base))
            results["playbooks/diagnose.yml"].append(timed(
                ["ansible-playbook", "playbooks/diagnose.yml", "-e", "diagnose_run_dir=%s/run%d" % (tmp, i)], base))
    bash_median = statistics.median(results["runbook bash (6 commands)"])
    print("%-28s %6s %8s %8s %8s %7s" % ("what", "runs", "median", "min", "max", "ratio"))
    for name, times in results.items():
        median = statistics.median(times)
        print("%-28s %6d %7.2fs %7.2fs %7.2fs %6.1fx" % (name, len(times), median, min(times), max(times),
                                                         median / bash_median))
    with open("/proc/loadavg", encoding="ascii") as fh:
        load = " ".join(fh.read().split()[:3])
    floor_median = statistics.median(results[floor])
    print("diagnose.yml above the Ansible floor: +%.2f s (median %.2f s vs %.2f s)"
          % (statistics.median(results["playbooks/diagnose.yml"]) - floor_median,
             statistics.median(results["playbooks/diagnose.yml"]), floor_median))
    print("ratio = median / median of the bash script; load average now: %s" % load)


if __name__ == "__main__":
    main()
