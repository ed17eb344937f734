# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""PostgreSQL section of the diagnosis, as the read-only monitoring role.

One ``pg_isready`` and two psql round trips (server facts, then the top
statements of ``pg_stat_statements``), plus the server log tail. A server that
is down or refuses us is reported, never raised. Query texts and log lines are
redacted and cut short.
"""

from __future__ import annotations

import re

from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_logs, pg_replication, psql
from ansible_collections.healthbutler.recovery.plugins.module_utils.diagnose_app import tail_lines
from ansible_collections.healthbutler.recovery.plugins.module_utils.redact import redact_text
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError

PG_ISREADY = {0: "accepting", 1: "rejecting", 2: "no_response", 3: "no_attempt"}

# Why a connection was refused, from libpq's message.
REFUSAL_REASONS = (
    ("too_many_connections", re.compile(r"too many clients|remaining connection slots are reserved|"
                                        r"sorry, too many clients", re.IGNORECASE)),
    ("starting_up", re.compile(r"the database system is (starting up|shutting down|in recovery mode)",
                               re.IGNORECASE)),
    ("authentication", re.compile(r"password authentication failed|no pg_hba.conf entry", re.IGNORECASE)),
    ("not_running", re.compile(r"Connection refused|No such file or directory|could not connect",
                               re.IGNORECASE)),
)

# One JSON document of server facts. :idle_s is replaced by an integer before sending.
FACTS_SQL = """
WITH act AS (SELECT * FROM pg_stat_activity WHERE backend_type = 'client backend'),
pgss AS (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
          WHERE e.extname = 'pg_stat_statements')
SELECT json_build_object(  -- cast to jsonb at the end: one line of output (json_agg inserts newlines)
  'version', current_setting('server_version'),
  'version_num', current_setting('server_version_num')::int,
  'in_recovery', pg_is_in_recovery(),
  'default_transaction_read_only', current_setting('default_transaction_read_only'),
  'default_transaction_read_only_source', (SELECT source FROM pg_settings WHERE name = 'default_transaction_read_only'),
  'xid_age_max', (SELECT max(age(datfrozenxid)) FROM pg_database WHERE datallowconn),
  'database', current_database(),
  'max_connections', current_setting('max_connections')::int,
  'superuser_reserved_connections', current_setting('superuser_reserved_connections')::int,
  'reserved_connections', coalesce(current_setting('reserved_connections', true), '0')::int,
  'connections_total', (SELECT count(*) FROM act),
  'connections_by_state', (SELECT coalesce(json_object_agg(state, n), '{}') FROM
      (SELECT coalesce(state, 'unknown') AS state, count(*) AS n FROM act GROUP BY 1) s),
  'stat_database', (SELECT json_build_object(
      'deadlocks', sum(deadlocks), 'conflicts', sum(conflicts),
      'checksum_failures', coalesce(sum(checksum_failures), 0),
      'xact_rollback', sum(xact_rollback), 'xact_commit', sum(xact_commit),
      'temp_files', sum(temp_files)) FROM pg_stat_database),
  'archiver', (SELECT json_build_object('archived_count', archived_count, 'last_archived_wal', last_archived_wal,
      'last_archived_time', last_archived_time, 'failed_count', failed_count, 'last_failed_wal', last_failed_wal,
      'last_failed_time', last_failed_time,
      'failing', last_failed_time IS NOT NULL AND (last_archived_time IS NULL OR last_failed_time > last_archived_time))
      FROM pg_stat_archiver),
  'replication', (%(replication)s),
  'locks_not_granted', (SELECT count(*) FROM pg_locks WHERE NOT granted),
  'waiting', (SELECT coalesce(json_agg(w ORDER BY w.pid), '[]') FROM (
      SELECT a.pid, a.usename AS "user", a.application_name, a.state, a.wait_event_type, a.wait_event,
             left(a.query, 300) AS query,
             extract(epoch FROM now() - a.query_start)::int AS waiting_s,
             pg_blocking_pids(a.pid) AS blocked_by
        FROM pg_stat_activity a WHERE cardinality(pg_blocking_pids(a.pid)) > 0) w),
  'blockers', (SELECT coalesce(json_agg(b ORDER BY b.pid), '[]') FROM (
      SELECT a.pid, a.usename AS "user", a.application_name, a.state, left(a.query, 300) AS query,
             extract(epoch FROM now() - a.xact_start)::int AS xact_age_s
        FROM pg_stat_activity a
       WHERE a.pid IN (SELECT unnest(pg_blocking_pids(x.pid)) FROM pg_stat_activity x)) b),
  'idle_in_transaction', (SELECT coalesce(json_agg(i ORDER BY i.idle_s DESC), '[]') FROM (
      SELECT a.pid, a.usename AS "user", a.application_name, left(a.query, 300) AS query,
             extract(epoch FROM now() - a.state_change)::int AS idle_s,
             extract(epoch FROM now() - a.xact_start)::int AS xact_age_s
        FROM act a WHERE a.state LIKE 'idle in transaction%%'
         AND now() - a.state_change > make_interval(secs => %(idle_s)d)) i),
  'pg_stat_statements', json_build_object(
      'schema', (SELECT nspname FROM pgss),
      'columns', (SELECT json_agg(attname::text ORDER BY attnum) FROM pg_attribute
                   WHERE attrelid = to_regclass(quote_ident((SELECT nspname FROM pgss)) || '.pg_stat_statements')
                     AND attnum > 0 AND NOT attisdropped))
)::jsonb
"""


# The replication view (pg_replication.STATE_SQL) as a sub-select of the one facts query.
REPLICATION_SQL = pg_replication.STATE_SQL.strip()[len("SELECT "):].rsplit("::jsonb", 1)[0]
REPLICATION_SQL = "SELECT " + REPLICATION_SQL


def replication_view(sql):
    """Replication state and lag of one server: role, lag in bytes and seconds, one summary line.

    A primary's lag comes from ``pg_stat_replication`` (per standby); a standby's from its receiver and
    ``pg_last_xact_replay_timestamp()`` (``lag_s`` is 0 when everything received is replayed: an idle primary
    sends nothing to replay, which is no lag).
    """
    if not sql:
        return None
    role = "standby" if sql.get("in_recovery") else "primary"
    view = dict(sql, role=role)
    if role == "standby":
        caught_up = sql.get("receive_lsn") and sql.get("receive_lsn") == sql.get("replay_lsn")
        view["lag_bytes"] = sql.get("replay_pending_bytes")
        view["lag_s"] = 0.0 if caught_up else sql.get("replay_delay_s")
        view["streaming"] = (sql.get("receiver") or {}).get("status") == "streaming"
    else:
        replicas = sql.get("replicas") or []
        view["lag_bytes"] = max([r.get("lag_bytes") or 0 for r in replicas], default=None)
        view["lag_s"] = max([r.get("lag_s") or 0 for r in replicas], default=None)
        view["streaming"] = sum(1 for r in replicas if r.get("state") == "streaming")
    view["summary"] = pg_replication.summarize({"role": role, "sql": sql, "timeline": sql.get("timeline")})
    return view


def collect_replication(runner, conn):
    """The replication section of a standby host: one psql round trip as the monitoring role."""
    out = {"ok": False, "errors": []}
    try:
        out.update(replication_view(psql.query_json(runner, conn, pg_replication.STATE_SQL, timeout=30)) or {})
        out["ok"] = True
    except CommandError as exc:
        message = redact_text((exc.stderr or exc.msg).strip())[-500:]
        out.update(role="down", refusal=refusal_reason(message), summary="not answering: %s" % message[-200:])
        out["errors"].append("query: %s" % message)
    return out


STATEMENT_TIME_COLUMNS = ("mean", "total", "stddev", "max")


def statement_columns(columns):
    """Pick ``pg_stat_statements`` time columns by reading the view: {mean, total, stddev, max} -> name.

    PG 13+ has ``mean_exec_time``, ``total_exec_time``...; before, ``mean_time``, ``total_time``...
    Returns None when neither generation is complete.
    """
    columns = set(columns or ())
    for suffix in ("_exec_time", "_time"):
        names = {kind: kind + suffix for kind in STATEMENT_TIME_COLUMNS}
        if set(names.values()) <= columns:
            return names
    return None


def statements_sql(schema, columns, limit, min_calls=1):
    """SQL for the top ``limit`` statements (called ``min_calls`` times or more) by mean time.

    Uses the view's own column names (see ``statement_columns``).
    """
    col = {kind: psql.quote_ident(name) for kind, name in columns.items()}
    return (
        "SELECT coalesce(json_agg(s), '[]')::jsonb FROM (SELECT s.queryid::text AS queryid, d.datname AS database,"
        f" s.calls, round(s.{col['mean']}::numeric, 2) AS mean_ms, round(s.{col['total']}::numeric, 2) AS total_ms,"
        f" round(s.{col['stddev']}::numeric, 2) AS stddev_ms, round(s.{col['max']}::numeric, 2) AS max_ms,"
        " s.rows, left(s.query, 300) AS query"
        f" FROM {psql.quote_ident(schema)}.pg_stat_statements s LEFT JOIN pg_database d ON d.oid = s.dbid"
        f" WHERE s.calls >= {int(min_calls)} ORDER BY s.{col['mean']} DESC LIMIT {int(limit)}) s")


def lock_chains(waiting, blockers):
    """Group waiting sessions under their root blockers (blockers that wait on nobody).

    ``waiting``: [{pid, blocked_by: [pids], ...}] from ``pg_blocking_pids``; ``blockers``:
    [{pid, xact_age_s, ...}]. Returns [{blocker: {...}, blocked_pids: [...], depth}], oldest
    blocker transaction first. A cycle (deadlock in progress) yields its lowest pid as root.
    """
    blocked_by = {w["pid"]: list(w.get("blocked_by") or []) for w in waiting}
    info = {b["pid"]: b for b in blockers}
    children = {}
    for pid, parents in blocked_by.items():
        for parent in parents:
            children.setdefault(parent, set()).add(pid)
    roots = [pid for pid in children if not blocked_by.get(pid)]
    if not roots and children:  # everyone waits on someone: a cycle
        roots = [min(children)]
    chains = []
    for root in roots:
        seen, frontier, depth = set(), [root], 0
        while frontier:
            nxt = []
            for pid in frontier:
                for child in sorted(children.get(pid, ())):
                    if child not in seen and child != root:
                        seen.add(child)
                        nxt.append(child)
            if nxt:
                depth += 1
            frontier = nxt
        blocker = dict(info.get(root, {"pid": root}))
        chains.append({"blocker": blocker, "blocked_pids": sorted(seen), "depth": depth})
    chains.sort(key=lambda c: -(c["blocker"].get("xact_age_s") or 0))
    return chains


def refusal_reason(message):
    """Classify a libpq connection error: too_many_connections, authentication, not_running..."""
    for reason, rx in REFUSAL_REASONS:
        if rx.search(message or ""):
            return reason
    return "other"


def server_log(path, lines):
    """Tail of the server log: {path, lines (redacted), fatal, panic, error}."""
    out = {"path": path, "lines": [], "fatal": 0, "panic": 0, "error": 0}
    if not path:
        return out
    try:
        tail = tail_lines(path, lines)
    except OSError as exc:
        out["read_error"] = "cannot read %s: %s" % (path, exc.strerror or exc)
        return out
    out["fatal"] = sum(1 for line in tail if " FATAL: " in line)
    out["panic"] = sum(1 for line in tail if " PANIC: " in line)
    out["error"] = sum(1 for line in tail if " ERROR: " in line)
    out["lines"] = [redact_text(line)[:500] for line in tail]
    out["summary"] = diagnose_logs.summarize(tail)
    return out


def _redact_queries(rows):
    for row in rows or ():
        if row.get("query"):
            row["query"] = redact_text(row["query"])
    return rows


def collect(runner, conn, log_path=None, log_lines=100, idle_in_transaction_s=60, statements=10,
            statements_min_calls=1):
    """The postgres section. ``conn`` is a ``psql.Conn`` for the monitoring role."""
    out = {"ok": False, "up": False, "query_ok": False, "errors": []}
    ready = runner.run([conn.binary("pg_isready")] + conn.conn_args() + ["-t", "5"], env=conn.env())
    out["pg_isready"] = PG_ISREADY.get(ready.rc, "rc=%s" % ready.rc)
    out["up"] = ready.rc == 0
    try:
        facts = psql.query_json(runner, conn, FACTS_SQL % {"idle_s": int(idle_in_transaction_s),
                                                           "replication": REPLICATION_SQL}, timeout=30)
    except CommandError as exc:
        message = redact_text((exc.stderr or exc.msg).strip())[-500:]
        out["query_error"] = message
        out["refusal"] = refusal_reason(message)
        out["errors"].append("query: %s" % message)
        facts = None
    if facts:
        out["query_ok"] = True
        out.update({k: v for k, v in facts.items() if k not in ("waiting", "blockers", "pg_stat_statements")})
        available = facts["max_connections"] - facts["superuser_reserved_connections"] - facts["reserved_connections"]
        out["connections_available"] = available
        out["connections_used_percent"] = (round(100.0 * facts["connections_total"] / available, 1)
                                           if available else None)
        _redact_queries(facts["waiting"])
        _redact_queries(facts["blockers"])
        _redact_queries(facts["idle_in_transaction"])
        out["replication"] = replication_view(facts.get("replication"))
        out["waiting"] = facts["waiting"]
        out["lock_chains"] = lock_chains(facts["waiting"], facts["blockers"])
        out["statements"] = top_statements(runner, conn, facts["pg_stat_statements"], statements,
                                           statements_min_calls)
    out["log"] = server_log(log_path, log_lines)
    out["ok"] = out["up"] and out["query_ok"]
    return out


# The extension's schema and the view's columns, for callers that do not gather FACTS_SQL.
PGSS_SQL = """
WITH pgss AS (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
               WHERE e.extname = 'pg_stat_statements')
SELECT json_build_object('schema', (SELECT nspname FROM pgss),
  'columns', (SELECT json_agg(attname::text ORDER BY attnum) FROM pg_attribute
               WHERE attrelid = to_regclass(quote_ident((SELECT nspname FROM pgss)) || '.pg_stat_statements')
                 AND attnum > 0 AND NOT attisdropped))
"""


def slow_statements(runner, conn, limit, min_calls=1):
    """``top_statements`` of the database ``conn`` names, reading the extension's schema and columns first."""
    return top_statements(runner, conn, psql.query_json(runner, conn, PGSS_SQL, timeout=30), limit, min_calls)


def top_statements(runner, conn, pgss, limit, min_calls=1):
    """{available, mean_column, top: [...]} or {available: False, reason} when the extension is absent."""
    if not pgss or not pgss.get("schema"):
        return {"available": False, "reason": "extension pg_stat_statements is not installed in %s" % conn.dbname}
    columns = statement_columns(pgss.get("columns"))
    if not columns:
        return {"available": False, "reason": "pg_stat_statements has neither mean_exec_time nor mean_time"}
    try:
        rows = psql.query_json(runner, conn, statements_sql(pgss["schema"], columns, limit, min_calls), timeout=30)
    except CommandError as exc:  # e.g. not in shared_preload_libraries
        return {"available": False, "mean_column": columns["mean"],
                "reason": redact_text((exc.stderr or exc.msg).strip())[-300:]}
    return {"available": True, "mean_column": columns["mean"], "min_calls": int(min_calls),
            "top": _redact_queries(rows or [])}
