# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Control one PostgreSQL cluster (start/stop/restart/reload), and triage its locks.

The method is chosen like an operator would: systemd when PID 1 is systemd,
else ``pg_ctlcluster`` when the data directory belongs to a Debian cluster
(``pg_lsclusters``), else ``pg_ctl -D``. ``pg_ctl`` and ``psql`` over the socket
run as the cluster's OS user (``runuser`` when called as root: postgres refuses
to run as root, and peer authentication wants that user).
"""

from __future__ import annotations

import os
import time

from ansible_collections.healthbutler.recovery.plugins.module_utils.diagnose_postgres import slow_statements
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import Conn, query_json, quote_literal
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError, RecoveryError

METHODS = ("systemd", "pg_ctlcluster", "pg_ctl")
STATES = ("started", "stopped", "restarted")

READY_SQL = """
SELECT json_build_object(
  'version', current_setting('server_version'),
  'version_num', current_setting('server_version_num')::int,
  'data_directory', current_setting('data_directory'),
  'port', current_setting('port')::int,
  'in_recovery', pg_is_in_recovery(),
  'connections', (SELECT json_build_object(
      'max', current_setting('max_connections')::int,
      'reserved', current_setting('superuser_reserved_connections')::int,
      'total', count(*),
      -- share of the slots a non-superuser can take; at or near 1 the pool is exhausted
      'saturation', round(count(*)::numeric / greatest(current_setting('max_connections')::int
                          - current_setting('superuser_reserved_connections')::int, 1), 3),
      'by_state', (SELECT coalesce(json_object_agg(s, n), '{}') FROM (
          SELECT coalesce(state, 'unknown') AS s, count(*) AS n FROM pg_stat_activity
          WHERE backend_type = 'client backend' GROUP BY 1) st),
      'by_user', (SELECT coalesce(json_object_agg(u, n), '{}') FROM (
          SELECT coalesce(usename, '?') AS u, count(*) AS n FROM pg_stat_activity
          WHERE backend_type = 'client backend' GROUP BY 1) us))
    FROM pg_stat_activity WHERE backend_type = 'client backend'))
"""


class PgControlError(RecoveryError):
    """PostgreSQL could not be brought to the requested state."""


def pid1_is_systemd(comm_path="/proc/1/comm"):
    try:
        with open(comm_path, encoding="utf-8") as fh:
            return fh.read().strip() == "systemd"
    except OSError:
        return False


def parse_lsclusters(text):
    """Rows of ``pg_lsclusters -h``: version, cluster, port, status, owner, data dir, log file."""
    rows = []
    for line in (text or "").splitlines():
        cols = line.split()
        if len(cols) >= 6 and cols[0][:1].isdigit():
            rows.append({"version": cols[0], "cluster": cols[1], "port": int(cols[2]), "status": cols[3],
                         "owner": cols[4], "data_directory": cols[5]})
    return rows


def debian_cluster(runner, data_dir, lsclusters="pg_lsclusters"):
    """The Debian cluster (version, name) whose data directory is ``data_dir``, else None."""
    res = runner.run([lsclusters, "-h"])
    if res.rc != 0:
        return None
    want = os.path.realpath(data_dir)
    for row in parse_lsclusters(res.stdout):
        if os.path.realpath(row["data_directory"]) == want:
            return row["version"], row["cluster"]
    return None


def choose_method(forced, systemd, cluster):
    """``forced`` unless 'auto'; else systemd, else pg_ctlcluster for a Debian cluster, else pg_ctl."""
    if forced and forced != "auto":
        if forced not in METHODS:
            raise PgControlError("method must be auto or one of %s, got %r" % (", ".join(METHODS), forced))
        if forced == "pg_ctlcluster" and not cluster:
            raise PgControlError("method pg_ctlcluster needs a Debian cluster; pg_lsclusters lists none "
                                 "with this data directory")
        return forced
    if systemd:
        return "systemd"
    if cluster:
        return "pg_ctlcluster"
    return "pg_ctl"


def plan(state, running, accepting, reload=False):
    """Actions for ``state`` given whether the server runs and accepts connections."""
    if state not in STATES:
        raise PgControlError("state must be one of %s, got %r" % (", ".join(STATES), state))
    if state == "stopped":
        return ["stop"] if running else []
    if state == "restarted":
        return ["restart"] if running else ["start"]
    if not running:
        return ["start"]
    if not accepting:
        # Up but answering nothing (or rejecting) after the wait: restart it.
        return ["restart"]
    return ["reload"] if reload else []


class Cluster:
    """One cluster: data directory, binaries, socket/port, OS user, and how to drive it."""

    def __init__(self, runner, data_dir, bindir=None, port=5432, socket_dir=None, os_user="postgres",
                 method="pg_ctl", debian=None, systemd_unit=None, log_file=None, stop_mode="fast",
                 euid=None, sleep=time.sleep, clock=time.monotonic):
        self.runner = runner
        self.data_dir = data_dir
        self.bindir = bindir
        self.port = int(port)
        self.socket_dir = socket_dir
        self.os_user = os_user
        self.method = method
        self.debian = debian
        self.systemd_unit = systemd_unit or ("postgresql@%s-%s" % debian if debian else "postgresql")
        self.log_file = log_file or os.path.join(data_dir, "pg_ctl.log")
        self.stop_mode = stop_mode
        self.euid = os.geteuid() if euid is None else euid
        self.sleep = sleep
        self.clock = clock

    def binary(self, name):
        return os.path.join(self.bindir, name) if self.bindir else name

    def as_os_user(self, argv):
        return ["runuser", "-u", self.os_user, "--"] + argv if self.euid == 0 else argv

    def conn(self, dbname="postgres"):
        return Conn(host=self.socket_dir, port=self.port, dbname=dbname, bindir=self.bindir)

    # -- observe --------------------------------------------------------
    def running(self):
        """pg_ctl status: 0 running, 3 not running, 4 no usable data directory."""
        res = self.runner.run(self.as_os_user([self.binary("pg_ctl"), "-D", self.data_dir, "status"]))
        if res.rc == 4:
            raise PgControlError("%s is not a usable data directory: %s" % (self.data_dir, res.stdout.strip()
                                                                            or res.stderr.strip()))
        return res.rc == 0

    def accepting(self):
        argv = [self.binary("pg_isready"), "-p", str(self.port), "-t", "3"]
        if self.socket_dir:
            argv += ["-h", self.socket_dir]
        return self.runner.run(argv).rc == 0

    def info(self):
        """Version, data directory, port, recovery and connection counts, by a real query."""
        return query_json(_AsUser(self), self.conn(), READY_SQL, timeout=30)

    def wait_ready(self, timeout):
        """Wait for pg_isready and a real query; return ``info()``."""
        deadline = self.clock() + timeout
        last = ""
        while True:
            if self.accepting():
                try:
                    info = self.info()
                    if info:
                        return info
                    last = "the readiness query returned nothing"
                except CommandError as exc:
                    last = exc.msg
            else:
                last = "pg_isready: not accepting connections"
            if self.clock() >= deadline:
                raise PgControlError("PostgreSQL is not ready after %ss: %s" % (timeout, last))
            self.sleep(1)

    # -- act ------------------------------------------------------------
    def action_argv(self, action):
        if self.method == "systemd":
            return ["systemctl", action, self.systemd_unit]
        if self.method == "pg_ctlcluster":
            version, name = self.debian
            return ["pg_ctlcluster", version, name, action]
        argv = [self.binary("pg_ctl"), "-D", self.data_dir, "-w", "-t", "120"]
        if action in ("stop", "restart"):
            argv += ["-m", self.stop_mode]
        if action in ("start", "restart"):
            argv += ["-l", self.log_file]
        return self.as_os_user(argv + [action])

    def apply(self, action):
        self.runner.check(self.action_argv(action), timeout=180, what="%s %s" % (self.method, action))


class _AsUser:
    """Runner wrapper that prefixes every argv with the cluster's ``as_os_user``."""

    def __init__(self, cluster):
        self.cluster = cluster

    def run(self, argv, env=None, data=None, cwd=None, timeout=None):
        return self.cluster.runner.run(self.cluster.as_os_user(list(argv)), env=env, data=data, cwd=cwd,
                                       timeout=timeout)


# -- lock triage --------------------------------------------------------------

MASK_PASSWORD_RE = r"(password\s*)('[^']*'|\S+)"


def masked_query(column):
    """SQL expression: the first 200 characters of a statement, with PASSWORD literals masked."""
    return "left(regexp_replace(%s, %s, %s, 'gi'), 200)" % (column, quote_literal(MASK_PASSWORD_RE),
                                                            quote_literal(r"\1'***'"))


BLOCKING_SQL = """
SELECT coalesce(json_agg(t ORDER BY t.blocker_xact_age_s DESC), '[]') FROM (
  SELECT w.pid AS blocked_pid, w.usename AS blocked_user, %s AS blocked_query,
         round(extract(epoch FROM now() - w.query_start)::numeric, 1) AS blocked_wait_s,
         b.pid AS blocker_pid, b.usename AS blocker_user, b.state AS blocker_state,
         %s AS blocker_query,
         round(extract(epoch FROM now() - coalesce(b.xact_start, b.query_start))::numeric, 1) AS blocker_xact_age_s
  FROM pg_stat_activity w
  CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid)
  JOIN pg_stat_activity b ON b.pid = bp.pid) t
""" % (masked_query("w.query"), masked_query("b.query"))

LOCKS_NOT_GRANTED_SQL = "SELECT json_build_object('not_granted', (SELECT count(*) FROM pg_locks WHERE NOT granted))"


def blockers_to_resolve(chains, min_age):
    """Distinct blocker pids whose transaction is at least ``min_age`` seconds old, oldest first."""
    seen, out = set(), []
    for link in sorted(chains, key=lambda c: -float(c["blocker_xact_age_s"] or 0)):
        pid = link["blocker_pid"]
        if pid not in seen and float(link["blocker_xact_age_s"] or 0) >= min_age:
            seen.add(pid)
            out.append({"pid": pid, "age_s": link["blocker_xact_age_s"], "user": link["blocker_user"],
                        "state": link["blocker_state"], "query": link["blocker_query"]})
    return out


def signal_sql(function, pids):
    return ("SELECT coalesce(json_object_agg(pid, %s(pid)), '{}') FROM unnest(ARRAY[%s]::int[]) AS pid"
            % (function, ",".join(str(int(p)) for p in pids)))


def triage(runner, conn, slow_limit=10):
    """Slow statements, blocking chains and ungranted locks of one database."""
    statements = slow_statements(runner, conn, slow_limit)  # the same reading as the diagnosis
    report = {"slow_statements": statements.get("top", [])}
    if statements["available"]:
        report["pg_stat_statements"] = "installed"
    else:
        report["pg_stat_statements"] = "missing: %s (CREATE EXTENSION pg_stat_statements to see slow statements)" % (
            statements["reason"])
    report["blocking"] = query_json(runner, conn, BLOCKING_SQL)
    report["locks_not_granted"] = query_json(runner, conn, LOCKS_NOT_GRANTED_SQL)["not_granted"]
    return report


def resolve_blockers(runner, conn, blockers, mode, grace, sleep=time.sleep):
    """Cancel blockers; with mode 'terminate', terminate those still there after ``grace`` seconds."""
    done = []
    if not blockers or mode == "none":
        return done
    pids = [b["pid"] for b in blockers]
    query_json(runner, conn, signal_sql("pg_cancel_backend", pids))
    done += [{"pid": p, "action": "cancel"} for p in pids]
    if mode == "terminate":
        sleep(grace)
        # Still blocking? An idle-in-transaction holder ignores a cancel.
        current = {c["blocker_pid"] for c in query_json(runner, conn, BLOCKING_SQL)}
        left = [p for p in pids if p in current]
        if left:
            query_json(runner, conn, signal_sql("pg_terminate_backend", left))
            done += [{"pid": p, "action": "terminate"} for p in left]
    return done


def idle_sessions_sql(user, min_age):
    """Client sessions of ``user`` idle (not in a transaction) for at least ``min_age`` seconds."""
    return ("SELECT coalesce(json_agg(json_build_object('pid', pid, 'idle_s', "
            "round(extract(epoch FROM now() - state_change)::numeric, 1), 'application', application_name, "
            "'client', client_addr::text) ORDER BY pid), '[]') FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND state = 'idle' AND usename = %s "
            "AND pid <> pg_backend_pid() AND now() - state_change >= make_interval(secs => %d)"
            % (quote_literal(user), int(min_age)))


def terminate_idle(runner, conn, sessions):
    """pg_terminate_backend for each idle session; returns the pids terminated."""
    if not sessions:
        return []
    done = query_json(runner, conn, signal_sql("pg_terminate_backend", [s["pid"] for s in sessions]))
    return sorted(int(pid) for pid, ok in done.items() if ok)
