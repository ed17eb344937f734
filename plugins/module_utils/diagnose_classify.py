# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Turn diagnose facts into findings, scenarios, a P-level, targets and escalation.

Every rule reads its threshold from ``incident_policy.THRESHOLDS`` and its P-level,
scenario and next playbook from ``incident_policy.FINDINGS``. Comparisons follow
the runbook's wording: "over/above" is strictly greater; saturation (``>=``) and
exhaustion (``>= 100 %``) are inclusive.
"""

from __future__ import annotations

import json
import re

from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_cause
from ansible_collections.healthbutler.recovery.plugins.module_utils import incident_policy as policy

SECTIONS = ("host", "app", "postgres", "replication", "redis", "backups")
_HEAP_LIMIT = re.compile(r"^--max-old-space-size=(\d+)$")


def _finding(fid, summary, evidence, host=None):
    severity, scenario, _override, _meaning = policy.FINDINGS[fid]
    out = {"id": fid, "severity": severity, "scenario": scenario, "summary": summary, "evidence": evidence,
           "next_playbook": policy.next_playbook(fid)}
    if host:
        out["host"] = host
    return out


def _health_failed_components(probe):
    """The ``failed`` list of a /health JSON body (e.g. ["database"]), or []."""
    try:
        body = json.loads(probe.get("body") or "")
    except ValueError:
        return []
    failed = body.get("failed") if isinstance(body, dict) else None
    return [str(f) for f in failed] if isinstance(failed, list) else []


def heap_limit_mb(node_args):
    for arg in node_args or ():
        m = _HEAP_LIMIT.match(str(arg))
        if m:
            return int(m.group(1))
    return None


def rules_app(app, t):
    out = []
    if not app.get("pm2", {}).get("reachable"):
        out.append(("pm2_unavailable", "pm2 jlist failed: %s" % app.get("pm2", {}).get("error"),
                    {"error": app.get("pm2", {}).get("error")}))
    proc = app.get("process")
    if app.get("pm2", {}).get("reachable") and proc is None:
        out.append(("app_process_missing", "PM2 has no process for the app", {"pm2": app.get("pm2")}))
    if proc:
        status = proc.get("status")
        evidence = {k: proc.get(k) for k in ("name", "status", "pid", "restart_time", "unstable_restarts",
                                             "uptime_s", "exit_code", "max_restarts", "gave_up")}
        if status == "stopped":
            out.append(("app_stopped", "PM2 shows %s stopped (pid %s)" % (proc.get("name"), proc.get("pid")), evidence))
        elif status == "errored":
            out.append(("app_errored", "PM2 shows %s errored after %s restarts (exit code %s)" % (
                proc.get("name"), proc.get("restart_time"), proc.get("exit_code")), evidence))
        elif status == "waiting restart" and proc.get("gave_up"):
            out.append(("app_errored", "%s gave up after %s restarts (max_restarts %s, exit code %s)" % (
                proc.get("name"), proc.get("restart_time"), proc.get("max_restarts"), proc.get("exit_code")),
                evidence))
        elif status in ("launching", "waiting restart") and (proc.get("restart_time") or 0) > 0:
            out.append(("app_restart_loop", "%s is %s after %s restarts" % (
                proc.get("name"), status, proc.get("restart_time")), evidence))
        elif (status == "online" and (proc.get("unstable_restarts") or 0) >= t["restart_loop_unstable"]
              and proc.get("uptime_s") is not None and proc["uptime_s"] < t["restart_loop_uptime_s"]):
            out.append(("app_restart_loop", "%s restarted %s times (%s unstable), up %ss" % (
                proc.get("name"), proc.get("restart_time"), proc.get("unstable_restarts"), proc.get("uptime_s")),
                evidence))
        heap = proc.get("heap") or {}
        limit = heap_limit_mb(proc.get("node_args"))
        if limit and heap.get("heap_used_mb") is not None and status == "online":
            percent = round(100.0 * heap["heap_used_mb"] / limit, 1)
            if percent > t["heap_percent_of_limit"]:
                out.append(("app_heap_high", "Node heap %s MiB of %s MiB (%s%%)" % (
                    heap["heap_used_mb"], limit, percent),
                    {"heap_used_mb": heap["heap_used_mb"], "limit_mb": limit, "percent": percent}))
    port = app.get("port")
    if port and not port.get("listening"):
        out.append(("app_port_not_listening", "nothing listens on port %s" % port.get("port"), port))
    probes = [p for p in [app.get("health")] + list(app.get("api") or []) if p]
    for probe in probes:
        status = probe.get("status") or 0
        evidence = {k: probe.get(k) for k in ("url", "status", "time_total_s", "error", "body")}
        if status == 0:
            out.append(("app_unreachable", "%s does not answer: %s" % (probe.get("url"), probe.get("error")), evidence))
            continue
        if status >= 500:
            # /health naming only the database is the database's incident (scenario 2).
            failed = _health_failed_components(probe) if probe is app.get("health") else []
            named = " naming %s" % ", ".join(failed) if failed else ""
            if "database" in failed:
                out.append(("app_db_errors_logged", "%s answers HTTP %s%s" % (probe.get("url"), status, named),
                            evidence))
            if not failed or set(failed) - {"database"}:
                out.append(("app_http_errors", "%s answers HTTP %s%s" % (probe.get("url"), status, named), evidence))
        if probe.get("time_total_s") is not None and probe["time_total_s"] > t["response_time_s"]:
            out.append(("app_slow_response", "%s took %.2f s (threshold %s s)" % (
                probe.get("url"), probe["time_total_s"], t["response_time_s"]), evidence))
    latency = (app.get("users") or {}).get("latency") or {}
    p95 = latency.get("p95_s")
    if (p95 is not None and p95 > t["response_time_s"] and (latency.get("samples") or 0) > 1
            and not any(f[0] == "app_slow_response" for f in out)):
        out.append(("app_slow_response", "p95 of %s probes of %s is %.2f s (threshold %s s)" % (
            latency["samples"], (app.get("health") or {}).get("url"), p95, t["response_time_s"]), latency))
    db = (app.get("users") or {}).get("db") or {}
    read = db.get("read") or {}
    if read.get("ok") and (read.get("time_s") or 0) > t["db_round_trip_s"]:
        out.append(("app_db_round_trip_slow", "the app's read as %s at %s took %.2f s (threshold %s s)" % (
            db.get("user"), db.get("target"), read["time_s"], t["db_round_trip_s"]),
            {"target": db.get("target"), "user": db.get("user"), "read": read}))
    for kind, fid in (("read", "users_read_failing"), ("write", "users_write_failing")):
        part = db.get(kind)
        if part and not part.get("ok") and part.get("reason") not in diagnose_cause.TRANSIENT:
            out.append((fid, "the app's %s as %s at %s fails (%s): %s" % (
                kind, db.get("user"), db.get("target"), part.get("reason"), (part.get("error") or "")[:200]),
                {"target": db.get("target"), "user": db.get("user"), "database": db.get("database"), kind: part}))
    log = app.get("error_log") or {}
    sig = log.get("signatures") or {}
    recent = log.get("age_s") is not None and log["age_s"] <= t["recent_log_s"]
    if recent and sig.get("heap_out_of_memory"):
        out.append(("app_heap_oom", "error log (written %ss ago) shows 'JavaScript heap out of memory' x%s" % (
            log["age_s"], sig["heap_out_of_memory"]), {"path": log.get("path"), "signatures": sig,
                                                       "age_s": log["age_s"], "lines": _matching(log, "heap")}))
    db_sig = sum(sig.get(k) or 0 for k in ("cannot_connect_database", "prisma_connection", "econnrefused"))
    if recent and db_sig and not any(f[0] == "app_db_errors_logged" for f in out):
        out.append(("app_db_errors_logged", "error log (written %ss ago) shows %s database connection errors" % (
            log["age_s"], db_sig), {"path": log.get("path"), "signatures": sig, "age_s": log["age_s"],
                                    "lines": _matching(log, "database|ECONNREFUSED|Prisma")}))
    return out


def _matching(log, pattern, keep=5):
    rx = re.compile(pattern, re.IGNORECASE)
    return [line for line in log.get("lines") or () if rx.search(line)][-keep:]


def rules_host(host, t):
    out = []
    mem = (host.get("memory") or {}).get("used_percent")
    if mem is not None and mem > t["memory_percent"]:
        out.append(("host_memory_high", "memory %s%% used (threshold %s%%)" % (mem, t["memory_percent"]),
                    host.get("memory")))
    cpu = (host.get("cpu") or {}).get("used_percent")
    if cpu is not None and cpu > t["cpu_percent"]:
        out.append(("host_cpu_high", "CPU %s%% busy (threshold %s%%)" % (cpu, t["cpu_percent"]),
                    {"cpu": host.get("cpu"), "load": host.get("load"), "top_processes": host.get("top_processes")}))
    for disk in host.get("disks") or ():
        if (disk.get("used_percent") or 0) > t["disk_percent"]:
            out.append(("disk_full", "%s is %s%% full" % (disk.get("path"), disk["used_percent"]), disk))
    return out


def rules_postgres(pg, t):
    out = []
    if not pg.get("query_ok"):
        refusal = pg.get("refusal")
        evidence = {k: pg.get(k) for k in ("pg_isready", "query_error", "refusal")}
        if refusal == "too_many_connections":
            out.append(("db_connections_exhausted", "PostgreSQL refuses connections: %s" % pg.get("query_error"),
                        evidence))
        elif not pg.get("up"):
            out.append(("db_down", "PostgreSQL is not accepting connections (pg_isready: %s)" % pg.get("pg_isready"),
                        evidence))
        else:
            out.append(("db_unreachable", "PostgreSQL refuses the monitoring connection (%s)" % refusal, evidence))
    else:
        used = pg.get("connections_used_percent")
        evidence = {k: pg.get(k) for k in ("connections_total", "connections_available", "connections_by_state",
                                           "max_connections", "superuser_reserved_connections",
                                           "reserved_connections", "connections_used_percent")}
        if used is not None and used >= 100:
            out.append(("db_connections_exhausted", "%s of %s connections in use" % (
                pg.get("connections_total"), pg.get("connections_available")), evidence))
        elif used is not None and used >= t["connections_percent"]:
            out.append(("db_connections_saturated", "%s of %s connections in use (%s%%)" % (
                pg.get("connections_total"), pg.get("connections_available"), used), evidence))
        if pg.get("in_recovery"):
            out.append(("db_in_recovery", "PostgreSQL is in recovery (read-only)", {"in_recovery": True}))
        stats = pg.get("stat_database") or {}
        if (stats.get("checksum_failures") or 0) > 0:
            out.append(("db_checksum_failures", "%s checksum failures" % stats["checksum_failures"], stats))
        chains = pg.get("lock_chains") or []
        if chains or (pg.get("locks_not_granted") or 0) > 0:
            first = chains[0]["blocker"] if chains else {}
            out.append(("db_locks_waiting",
                        "%s locks not granted; pid %s blocks %s session(s), its transaction is %ss old" % (
                            pg.get("locks_not_granted"), first.get("pid"),
                            len(chains[0]["blocked_pids"]) if chains else 0, first.get("xact_age_s")),
                        {"locks_not_granted": pg.get("locks_not_granted"), "lock_chains": chains,
                         "waiting": pg.get("waiting")}))
        idle = pg.get("idle_in_transaction") or []
        if idle:
            out.append(("db_idle_in_transaction", "%s session(s) idle in transaction, oldest %ss" % (
                len(idle), idle[0].get("idle_s")), {"sessions": idle[:5]}))
        statements = pg.get("statements") or {}
        slow = [s for s in statements.get("top") or () if is_slow_statement(s, t)]
        if slow:
            out.append(("db_slow_statements", "%s statement(s) with mean time over %s ms, slowest %s ms: %s" % (
                len(slow), t["slow_statement_ms"], slow[0].get("mean_ms"), (slow[0].get("query") or "")[:80]),
                {"mean_column": statements.get("mean_column"), "statements": slow[:5]}))
        archiver = pg.get("archiver") or {}
        if archiver.get("failing"):
            out.append(("wal_archiving_failing", "WAL archiving fails: %s failures, last %s" % (
                archiver.get("failed_count"), archiver.get("last_failed_wal")), archiver))
    log = pg.get("log") or {}
    if (log.get("panic") or 0) > 0:
        out.append(("db_panic", "%s PANIC line(s) in %s" % (log["panic"], log.get("path")),
                    {"path": log.get("path"), "lines": [ln for ln in log.get("lines") or () if "PANIC" in ln][-5:]}))
    return out


def is_slow_statement(stmt, t):
    """Recurring and slow: mean over the threshold, called often enough, and not one outlier's doing.

    A standard deviation above the mean means a few slow runs (a one-off load re-run as a no-op)
    pull the mean up; such a statement is not "slow" in the runbook's sense.
    """
    mean = stmt.get("mean_ms") or 0
    stddev = stmt.get("stddev_ms")
    return (mean > t["slow_statement_ms"] and (stmt.get("calls") or 0) >= t["slow_statement_min_calls"]
            and (stddev is None or stddev <= mean))


def rules_redis(redis, t):
    out = []
    if not redis.get("ping"):
        out.append(("redis_down", "Redis does not answer PING: %s" % "; ".join(redis.get("errors") or []),
                    {"errors": redis.get("errors")}))
        return out
    used = redis.get("memory_used_percent")
    if used is not None and used > t["redis_memory_percent"]:
        out.append(("redis_memory_high", "Redis uses %s%% of maxmemory (%s evicted keys)" % (
            used, redis.get("evicted_keys")), {k: redis.get(k) for k in (
                "used_memory", "maxmemory", "memory_used_percent", "evicted_keys", "maxmemory_policy")}))
    if redis.get("rdb_last_bgsave_status") not in (None, "ok"):
        out.append(("redis_rdb_save_failing", "Redis' last RDB save: %s" % redis.get("rdb_last_bgsave_status"),
                    {k: redis.get(k) for k in ("rdb_last_bgsave_status", "rdb_last_save_age_s",
                                               "rdb_changes_since_last_save")}))
    return out


def rules_backups(backups, t):
    out = []
    backup = backups.get("backup")
    if backup is not None:
        newest = backup.get("newest")
        if newest is None:
            out.append(("backup_missing", "no backup file in %s" % backup.get("dir"), backup))
        elif newest.get("age_s", 0) > t["backup_max_age_h"] * 3600:
            out.append(("backup_stale", "newest backup %s is %.1f h old (policy %s h)" % (
                newest.get("name"), newest["age_s"] / 3600.0, t["backup_max_age_h"]),
                {"newest": newest, "wal": (backups.get("wal") or {}).get("newest")}))
    return out


def rules_replication(rep, t):
    """A db_standby host's own view: is it a streaming standby, and how far behind."""
    evidence = {k: rep.get(k) for k in ("role", "summary", "timeline", "receive_lsn", "replay_lsn", "lag_bytes",
                                        "lag_s", "refusal")}
    if rep.get("role") != "standby" or not rep.get("streaming"):
        what = {"down": "does not answer", "primary": "is a primary, not a standby (promoted: update the inventory, "
                "or rejoin it)"}.get(rep.get("role"), "receives no WAL from the primary (receiver not streaming)")
        return [("standby_not_streaming", "the standby %s: %s" % (what, rep.get("summary")), evidence)]
    lag_bytes, lag_s = rep.get("lag_bytes") or 0, rep.get("lag_s") or 0
    if lag_bytes > t["replication_lag_bytes"] or lag_s > t["replication_lag_s"]:
        return [("replication_lag_high", "the standby is %s bytes and %.1f s behind (thresholds %s bytes, %s s)" % (
            lag_bytes, lag_s, t["replication_lag_bytes"], t["replication_lag_s"]), evidence)]
    return []


RULES = {"host": rules_host, "app": rules_app, "postgres": rules_postgres, "replication": rules_replication,
         "redis": rules_redis, "backups": rules_backups}


def _per_host(facts):
    """Accept one host's facts, a diagnose result, a {host: facts} dict or a list of them."""
    if isinstance(facts, list):
        pairs = []
        for item in facts:
            pairs.extend(_per_host(item))
        return pairs
    if not isinstance(facts, dict):
        raise TypeError("classify_incident expects diagnose facts (a dict or a list), got %s" % type(facts).__name__)
    if "facts" in facts and isinstance(facts["facts"], dict):
        return [(facts.get("hostname") or facts["facts"].get("hostname"), facts["facts"])]
    if any(s in facts for s in SECTIONS) or isinstance(facts.get("sections"), list):  # one host's facts
        return [(facts.get("hostname"), facts)]
    pairs = []
    for host, value in facts.items():
        for _h, sub in _per_host(value):
            pairs.append((host, sub))
    return pairs


def classify(facts, elapsed_minutes=0, thresholds=None):
    """The incident classification; see docs/diagnose.md for the output contract."""
    t = dict(policy.THRESHOLDS)
    unknown = set(thresholds or {}) - set(t)
    if unknown:
        raise ValueError("unknown thresholds %s; valid: %s" % (sorted(unknown), sorted(t)))
    t.update(thresholds or {})
    pairs = _per_host(facts)
    several = len({h for h, _f in pairs}) > 1
    findings, seen = [], set()
    for host, host_facts in pairs:
        for section in SECTIONS:
            data = host_facts.get(section)
            if not isinstance(data, dict):
                continue
            for fid, summary, evidence in RULES[section](data, t):
                key = (host, fid, summary)
                if key not in seen:
                    seen.add(key)
                    findings.append(_finding(fid, summary, evidence, host if several or host else None))
    order = list(policy.FINDINGS)
    findings.sort(key=lambda f: (policy.severity_rank(f["severity"]), order.index(f["id"])))
    severity = findings[0]["severity"] if findings else None
    impact = diagnose_cause.impact(pairs, t)
    if findings and impact["level"] and policy.severity_rank(impact["level"]) < policy.severity_rank(severity):
        severity = impact["level"]
    causes = diagnose_cause.causes(pairs, t, findings) if findings else []
    cause = causes[0] if causes else (diagnose_cause.cause_unknown(pairs, findings) if findings else None)
    next_playbook = findings[0]["next_playbook"] if findings else None
    if cause and cause["id"] != "unknown":
        next_playbook = cause["playbook"]
    scenarios = []
    for f in findings:
        if f["scenario"] not in scenarios:
            scenarios.append(f["scenario"])
    return {
        "healthy": not findings,
        "severity": severity,
        "severity_meaning": policy.SEVERITY_MEANING.get(severity),
        "scenarios": scenarios,
        "scenario_names": [policy.RUNBOOK_SCENARIOS[s] for s in scenarios],
        "findings": findings,
        "targets": policy.targets(severity),
        "escalation": policy.escalation(severity, elapsed_minutes),
        "next_playbook": next_playbook,
        "next_step": (cause["playbook"] or cause["manual"]) if cause and cause["id"] != "unknown" else next_playbook,
        "impact": impact,
        "cause": cause,
        "causes": causes[1:],
        "thresholds": t,
    }
