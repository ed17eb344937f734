# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""The runbook's incident policy, in one place.

Thresholds (场景1–5 symptoms), the finding -> P-level table (故障级别), response and
resolution targets (响应时间) and the escalation path (升级路径). ``classify_incident``
and the docs (docs/diagnose.md) read from here; change a number here and nowhere else.
"""

from __future__ import annotations

SEVERITIES = ("P0", "P1", "P2", "P3")

# 故障级别
SEVERITY_MEANING = {
    "P0": "emergency: the system is completely unavailable",
    "P1": "severe: a core function is unavailable",
    "P2": "important: part of the functionality is unavailable",
    "P3": "normal: degraded performance or a minor problem",
}

# 响应时间: minutes (response 0 = immediately).
TARGETS = {
    "P0": {"response_minutes": 0, "resolution_minutes": 60, "response": "immediately", "resolution": "< 1 hour"},
    "P1": {"response_minutes": 15, "resolution_minutes": 240, "response": "< 15 minutes", "resolution": "< 4 hours"},
    "P2": {"response_minutes": 60, "resolution_minutes": 1440, "response": "< 1 hour", "resolution": "< 24 hours"},
    "P3": {"response_minutes": 240, "resolution_minutes": 4320, "response": "< 4 hours", "resolution": "< 72 hours"},
}

# 升级路径: (from minute, until minute or None, step). Any P0 also brings in the CTO at once.
ESCALATION_PATH = (
    (0, 15, {"step": 1, "role": "on-call engineer", "contact": "ops-oncall@healthbutler.com"}),
    (15, 30, {"step": 2, "role": "team lead", "contact": "ops-manager@healthbutler.com"}),
    (30, 60, {"step": 3, "role": "tech director", "contact": "tech-lead@healthbutler.com"}),
    (60, None, {"step": 4, "role": "CTO", "contact": "cto (no address in the runbook)"}),
)
P0_ESCALATES_TO_STEP = 4

# Symptoms of the runbook's scenarios. Override any of them per call (classify_incident thresholds=...).
THRESHOLDS = {
    "response_time_s": 2.0,            # 场景4: API response time > 2 s
    "db_round_trip_s": 1.0,            # 场景4: the app's read as its db user from the app host (LAN: ~0.05 s)
    "cpu_percent": 80.0,               # 场景4: CPU > 80 %
    "memory_percent": 90.0,            # 场景3: system memory > 90 %
    "heap_percent_of_limit": 90.0,     # 场景3: Node heap used versus --max-old-space-size
    "restart_loop_uptime_s": 60,       # 场景1/3: online for less than this after a restart = restart loop
    "restart_loop_unstable": 2,        # ... with at least this many unstable restarts (one OOM death is not a loop)
    "connections_percent": 90.0,       # 场景2: connections / (max_connections - reserved)
    "slow_statement_ms": 2000.0,       # 场景4: mean time of a recurring statement (= the API target)
    "slow_statement_min_calls": 3,     # one-off loads and migrations are not "slow queries"
    "idle_in_transaction_s": 60,       # 场景4: sessions idle in a transaction longer than this
    "recent_log_s": 300,               # an app error-log signature counts if the log was written this recently
    "redis_memory_percent": 90.0,      # used_memory / maxmemory
    "backup_max_age_h": 26.0,          # 备份策略: daily full backup at 03:00, plus margin
    "disk_percent": 90.0,              # 监控指标: disk use of the data, backup and app paths
    "replication_lag_bytes": 16777216,  # a standby further behind than this loses that much WAL in a failover
    "replication_lag_s": 60,           # ... or is this many seconds behind in replay (pg_last_xact_replay_timestamp)
    "xid_age": 1500000000,             # age(datfrozenxid) past which wraparound is near (of 2^31)
}

RUNBOOK_SCENARIOS = {
    1: "application unavailable (应用服务不可用)",
    2: "database connection failure (数据库连接失败)",
    3: "out of memory (内存溢出)",
    4: "performance degradation (性能下降)",
    5: "data loss or corruption (数据丢失或损坏)",
}

# The playbook to run next, per scenario (DESIGN.md's collection map), by its FQCN:
# `ansible-playbook healthbutler.recovery.<name>` works from the checkout and from an installed collection.
NEXT_PLAYBOOK = {
    1: "healthbutler.recovery.restart_app",
    2: "healthbutler.recovery.recover_db_connection",
    3: "healthbutler.recovery.recover_memory",
    4: "healthbutler.recovery.triage_performance",
    5: "healthbutler.recovery.recover_db",
}

# THE finding -> P-level table. Order matters only for ties: earlier rows are reported first.
# id: (severity, scenario, next playbook override or None, what it means)
FINDINGS = {
    "app_process_missing": ("P0", 1, None, "PM2 has no process of this name"),
    "app_stopped": ("P0", 1, None, "PM2 shows the app stopped"),
    "app_errored": ("P0", 1, None, "PM2 shows the app errored (crash loop exhausted its restarts)"),
    "app_unreachable": ("P0", 1, None, "the health URL does not answer"),
    "app_port_not_listening": ("P0", 1, None, "nothing listens on the app port"),
    "db_down": ("P0", 2, None, "PostgreSQL does not accept connections"),
    "pm2_unavailable": ("P1", 1, None, "pm2 jlist failed: the process state is unknown"),
    "app_restart_loop": ("P1", 1, None, "the app restarts repeatedly (restart loop)"),
    "app_http_errors": ("P1", 1, None, "the health or API URLs answer 5xx"),
    "db_connections_exhausted": ("P1", 2, None, "no connection slot left for non-superusers"),
    "db_unreachable": ("P1", 2, None, "PostgreSQL is up but refuses the monitoring connection"),
    "users_read_failing": ("P1", 2, None, "a real read as the app's database user fails, from the app host"),
    "users_write_failing": ("P1", 2, None, "a real write as the app's database user fails (probe rolled back)"),
    "db_panic": ("P1", 2, None, "PANIC in the PostgreSQL log"),
    "app_heap_oom": ("P1", 3, None, "the app died of 'JavaScript heap out of memory'"),
    "redis_down": ("P1", 1, "healthbutler.recovery.restart_app", "Redis does not answer PING"),
    "db_in_recovery": ("P1", 5, None, "PostgreSQL is in recovery (read-only)"),
    "db_checksum_failures": ("P1", 5, None, "data checksum failures in pg_stat_database"),
    "db_connections_saturated": ("P2", 2, None, "connections near max_connections minus reserved"),
    "app_db_errors_logged": ("P2", 2, None, "the app logs database connection errors"),
    "host_memory_high": ("P2", 3, None, "system memory use above the threshold"),
    "app_heap_high": ("P2", 3, None, "Node heap close to its --max-old-space-size limit"),
    "db_locks_waiting": ("P2", 4, None, "sessions wait for locks held by another transaction"),
    "redis_rdb_save_failing": ("P2", 5, None, "Redis' last RDB save failed"),
    "wal_archiving_failing": ("P2", 5, "healthbutler.recovery.verify_backups",
                              "WAL archiving fails (pg_stat_archiver)"),
    "disk_full": ("P2", 4, None, "a data, backup or app filesystem is nearly full"),
    "app_slow_response": ("P3", 4, None, "health/API response time above the threshold"),
    "app_db_round_trip_slow": ("P3", 4, None, "the app's database read from the app host is slower than the threshold"),
    "host_cpu_high": ("P3", 4, None, "CPU use above the threshold"),
    "db_slow_statements": ("P3", 4, None, "recurring statements slower than the threshold (pg_stat_statements)"),
    "db_idle_in_transaction": ("P3", 4, None, "sessions idle in a transaction longer than the threshold"),
    "redis_memory_high": ("P3", 3, None, "Redis memory close to maxmemory"),
    "standby_not_streaming": ("P3", 2, "healthbutler.recovery.rejoin_db",
                              "the standby receives no WAL: there is nothing to fail over to"),
    "replication_lag_high": ("P3", 4, None, "the standby is behind the primary by more than the thresholds"),
    "backup_missing": ("P3", 5, "healthbutler.recovery.backup", "no backup file found"),
    "backup_stale": ("P3", 5, "healthbutler.recovery.backup", "the newest backup is older than the policy allows"),
}


# User impact -> P-level (diagnose_cause.impact); the overall P-level is the more severe of this and the findings'.
IMPACT_LEVELS = (
    ("P0", "the app does not answer"),
    ("P0", "/health is not 200 and the app's database user can neither read nor write (not merely busy)"),
    ("P1", "every write fails as the app's database user (rolled-back probe; a lock wait is not a refusal)"),
    ("P1", "reads fail as the app's database user"),
    ("P1", "/health answers, but not 200"),
    ("P3", "p95 latency of the health probes over response_time_s"),
)


def severity_rank(severity):
    """0 for P0 (most severe) ... 3 for P3; 4 for None."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def next_playbook(finding_id):
    severity, scenario, override, _meaning = FINDINGS[finding_id]
    return override or NEXT_PLAYBOOK[scenario]


def escalation(severity, elapsed_minutes):
    """The escalation step for ``elapsed_minutes`` since the incident began; P0 always involves the CTO.

    Returns {elapsed_minutes, step, role, contact, notify: [roles involved so far]} or None when healthy.
    """
    if severity is None:
        return None
    elapsed = max(0.0, float(elapsed_minutes or 0))
    current = ESCALATION_PATH[-1][2]
    for start, end, step in ESCALATION_PATH:
        if elapsed >= start and (end is None or elapsed < end):
            current = step
            break
    notify = [s["role"] for _a, _b, s in ESCALATION_PATH if s["step"] <= current["step"]]
    cto = ESCALATION_PATH[-1][2]
    if severity == "P0" and cto["role"] not in notify:
        notify.append(cto["role"])
    out = dict(current, elapsed_minutes=elapsed, notify=notify)
    out["reason"] = ("P0: the CTO is involved at once" if severity == "P0" and current["step"] < P0_ESCALATES_TO_STEP
                     else "elapsed time")
    return out


def targets(severity):
    """{response, resolution, response_minutes, resolution_minutes} for ``severity`` (None when healthy)."""
    return dict(TARGETS[severity]) if severity in TARGETS else None
