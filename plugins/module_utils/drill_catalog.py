# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""The drill scenario catalogue: data, in one place.

Each scenario names its fault injection (a task file ``roles/drill/tasks/faults/<fault>.yml`` with an
``inject`` and a ``rollback`` part), the runbook scenario and expected P-level, the recovery playbook
(with extra vars), the effect probe that sees the fault take hold before detection starts (``effect``,
run by ``drill_effect``) and the steady-state probe. ``prepare`` playbooks run before the steady-state check
(for example a fresh backup that the recovery needs). ``detect`` says how the fault is detected:
``diagnose`` (the diagnosis playbook must classify it), ``recovery`` (the recovery playbook is the
detector, e.g. verification catching a corrupt backup) or ``reported`` (users report it, as the runbook's
场景5 symptoms say: deleted rows and lost files are invisible to a health diagnosis).
"""

from __future__ import annotations

import copy
import os

PROBES = ("app", "app+uploads", "app+backups")

# Effect probes (drill_effect): each scenario's fault as seen by something other than the diagnosis.
SLOW_STATEMENTS_SQL = (
    "SELECT json_build_object('seen', count(*) > 0, 'observation', format('%s pg_sleep statement(s) in "
    "pg_stat_statements that ran over 2 s, slowest %s ms', count(*), round(max(m)::numeric))) FROM (SELECT coalesce("
    "(to_jsonb(s) ->> 'max_exec_time'), (to_jsonb(s) ->> 'max_time'))::float AS m FROM pg_stat_statements s "
    "WHERE s.query ILIKE '%pg_sleep%') q WHERE m > 2000;")
ROWS_GONE_SQL = (
    "SELECT json_build_object('seen', count(*) > 0 AND count(h.id) = 0, 'observation', format('%s of %s deleted "
    "row(s) still in health_data', count(h.id), count(*))) FROM hb_drill_preserved_rows p "
    "LEFT JOIN health_data h ON h.id = p.id;")
# The ids come from the injection's facts: a whole-cluster PITR to the restore point also removes the
# preserved copy, which was committed after it.
ROWS_BACK_SQL = (
    "SELECT json_build_object('seen', count(*) > 0 AND count(h.id) = count(*), 'observation', format('%s of %s "
    "deleted row(s) back in health_data', count(h.id), count(*))) FROM unnest(string_to_array('{deleted_ids}', ',')"
    "::bigint[]) d(id) LEFT JOIN health_data h ON h.id = d.id;")

SCENARIOS = {
    "app_crash": {
        "scope": "app",
        "fault": "app_stop",
        "description": "The app is stopped in PM2 (pm2 stop): nothing answers on the app port.",
        "runbook_scenario": 1, "expected_p_level": "P0",
        "recovery": {"playbook": "restart_app.yml", "vars": {}},
        "effect": {"kind": "http", "path": "/health", "status": [0],
                   "describe": "nothing answers on the app port"},
        "probe": "app",
    },
    "app_crash_loop": {
        "scope": "app",
        "fault": "app_crash_loop",
        "description": "The app process is killed (SIGKILL) as soon as PM2 restarts it, until PM2 gives up (errored).",
        "runbook_scenario": 1, "expected_p_level": "P0",
        "recovery": {"playbook": "restart_app.yml", "vars": {}},
        "effect": {"kind": "http", "path": "/health", "status": [0],
                   "describe": "nothing answers on the app port once PM2 has given up"},
        "probe": "app",
    },
    "db_down": {
        "fault": "pg_stop",
        "description": "PostgreSQL is stopped (pg_ctl stop -m fast): /health 503 naming the database.",
        "runbook_scenario": 2, "expected_p_level": "P0",
        "recovery": {"playbook": "recover_db_connection.yml", "vars": {}},
        "effect": {"kind": "http", "path": "/health", "status": [503], "body_regex": "database",
                   "describe": "/health answers 503 naming the database"},
        "probe": "app",
    },
    "connection_exhaustion": {
        "fault": "pg_connections",
        "description": "Every free PostgreSQL connection slot is taken by idle sessions of the drill.",
        "runbook_scenario": 2, "expected_p_level": "P1",
        "recovery": {"playbook": "recover_db_connection.yml", "vars": {}},
        "effect": {"kind": "http", "path": "/api/health-data", "method": "POST",
                   "body": {"user_id": 1, "metric": "drill_effect", "value": 1}, "status": [500],
                   "body_regex": "too many clients|remaining connection slots",
                   "describe": "a write through the app is refused: PostgreSQL has no connection slot left"},
        "probe": "app",
    },
    "memory_leak": {
        "scope": "app",
        "fault": "app_heap",
        "description": "The app's heap grows until V8 runs out of memory (sandbox /debug/allocate).",
        "runbook_scenario": 3, "expected_p_level": "P1",
        "recovery": {"playbook": "recover_memory.yml", "vars": {}},
        "effect": {"kind": "pm2_log", "regex": "heap out of memory|Reached heap limit",
                   "describe": "the app's error log shows V8 hitting its heap limit"},
        "probe": "app",
    },
    "lock_contention": {
        "fault": "pg_lock",
        "description": "An open transaction holds a lock on health_data that blocks every INSERT.",
        "runbook_scenario": 4, "expected_p_level": "P2",
        "recovery": {"playbook": "triage_performance.yml",
                     "vars": {"performance_triage_resolve": "terminate", "performance_triage_blocker_min_age": 5}},
        "effect": {"kind": "sql", "error_regex": "could not obtain lock",
                   "sql": "BEGIN; LOCK TABLE health_data IN ROW EXCLUSIVE MODE NOWAIT; ROLLBACK;\n"
                          "SELECT json_build_object('seen', false, 'observation',"
                          " 'ROW EXCLUSIVE on health_data granted at once: nothing blocks an INSERT');",
                   "describe": "an INSERT's lock on health_data cannot be had"},
        "probe": "app",
    },
    "slow_queries": {
        "fault": "pg_slow",
        "description": "Slow statements (pg_sleep) pile up in pg_stat_statements.",
        "runbook_scenario": 4, "expected_p_level": "P3",
        "recovery": {"playbook": "triage_performance.yml", "vars": {}},
        "effect": {"kind": "sql", "sql": SLOW_STATEMENTS_SQL,
                   "describe": "pg_stat_statements records statements that ran over 2 s"},
        "probe": "app",
    },
    "data_loss": {
        "fault": "rows_deleted",
        "description": "Recent health_data rows are deleted while the writer keeps inserting; rows mode puts back "
                       "only the deleted ones from a copy at the restore point, the app serving throughout.",
        "runbook_scenario": 5, "expected_p_level": "P1",
        "recovery": {"playbook": "recover_db.yml",
                     "vars": {"recover_mode": "rows", "target": {"name": "{restore_point}"},
                              "tables": ["health_data"], "mode": "missing"}},
        "effect": {"kind": "sql", "sql": ROWS_GONE_SQL,
                   "describe": "the deleted rows are gone from health_data"},
        "recovered": {"kind": "sql", "sql": ROWS_BACK_SQL, "describe": "every deleted row is back in health_data"},
        "probe": "app",
        "prepare": ["backup.yml"],
        "detect": "reported",
    },
    "data_loss_cluster": {
        "fault": "rows_deleted",
        "description": "As data_loss, recovered by a whole-cluster PITR to the restore point: the writer's rows "
                       "after it are discarded and the app is down while it runs.",
        "runbook_scenario": 5, "expected_p_level": "P1",
        "recovery": {"playbook": "recover_db.yml",
                     "vars": {"recover_mode": "pitr", "target": {"name": "{restore_point}"}}},
        "effect": {"kind": "sql", "sql": ROWS_GONE_SQL,
                   "describe": "the deleted rows are gone from health_data"},
        "recovered": {"kind": "sql", "sql": ROWS_BACK_SQL, "describe": "every deleted row is back in health_data"},
        "probe": "app",
        "prepare": ["backup.yml"],
        "detect": "reported",
        "rpo_cutoff": "restore_point",
    },
    "bad_release": {
        "scope": "app",
        "fault": "bad_release",
        "description": "A release whose /health answers 500 is built and deployed from a new tag.",
        "runbook_scenario": 1, "expected_p_level": "P1",
        "recovery": {"playbook": "rollback.yml", "vars": {}},
        "effect": {"kind": "http", "path": "/health", "status": [500], "body_regex": "broken",
                   "describe": "/health answers 500 from the new release"},
        "probe": "app",
    },
    "uploads_lost": {
        "scope": "app",
        "fault": "uploads_lost",
        "description": "Uploaded files are deleted (moved into the drill directory) and one is changed.",
        "runbook_scenario": 5, "expected_p_level": "P2",
        "recovery": {"playbook": "restore_files.yml", "vars": {}},
        "effect": {"kind": "files_missing", "paths": "{removed_uploads}",
                   "describe": "the removed uploads are missing from the uploads directory"},
        "probe": "app+uploads",
        "prepare": ["backup.yml"],
        "detect": "reported",
    },
    "corrupt_backup": {
        "fault": "backup_corrupt",
        "description": "4 KB inside the newest dump are overwritten; verification must fail and name it.",
        "runbook_scenario": 5, "expected_p_level": None,
        "recovery": {"playbook": "verify_backups.yml", "vars": {}, "expect": "failure"},
        "effect": {"kind": "checksum", "path": "{corrupted_dump}",
                   "describe": "the newest dump no longer matches its .sha256"},
        "probe": "app+backups",
        "prepare": ["backup.yml"],
        "detect": "recovery",
        "evidence_fact": "corrupted_dump",
    },
    "db_host_lost": {
        "fault": "pg_host_kill",
        "description": "Every process of the PostgreSQL primary is killed (-9) while the writer runs; the standby "
                       "is promoted. Lost acknowledged writes are set against the replication lag at the kill.",
        "runbook_scenario": 2, "expected_p_level": "P0",
        "recovery": {"playbook": "failover_db.yml", "vars": {}},
        # Writes acknowledged in the asynchronous replication window at the kill are lost by design: measured and
        # reported against the lag, not a deviation; a loss outside that window is.
        "rpo_window": "replication",
        "effect": {"kind": "pg_down", "pids": "{killed_pids}",
                   "describe": "the primary's processes are gone and nothing accepts connections on its port"},
        "probe": "app",
    },
}

SCENARIOS.update({
    "network_partition": {
        "fault": "net_partition",
        "description": "The app hosts lose their route to the db host (ip route unreachable on each app host); "
                       "PostgreSQL stays up on its own host. Healed, the app reconnects without a restart.",
        "runbook_scenario": 2, "expected_p_level": "P0", "expected_cause": ["network_partition"],
        "needs": "separate_hosts", "heal": True,
        "recovery": {"playbook": "recover_db_connection.yml", "vars": {}},
        "effect": {"kind": "http", "path": "/health", "status": [503], "body_regex": "EHOSTUNREACH|ENETUNREACH",
                   "describe": "/health answers 503: the app host has no route to the database"},
        "probe": "app",
    },
    "network_latency": {
        "fault": "net_latency",
        "description": "The db host's link is slowed for PostgreSQL's replies (tc on its interface: netem delay "
                       "where the kernel has it, else an htb class throttled to a few kbit/s).",
        "runbook_scenario": 4, "expected_p_level": "P3", "expected_cause": ["network_latency"],
        "needs": "separate_hosts", "heal": True,
        # A throttled link saturates under ten writes a second: the writer writes every 500 ms here.
        "writer_interval_ms": 500,
        "recovery": {"playbook": "triage_performance.yml", "vars": {}},
        "effect": {"kind": "http", "path": "/api/health-data", "method": "POST",
                   "body": {"user_id": 1, "metric": "drill_effect", "value": 1}, "status": [201],
                   "slower_than_s": 0.5,
                   "describe": "a write through an app host is acknowledged, but only after over half a second"},
        "probe": "app",
    },
})


# Scenarios left out of the default run (drilled when named): db_host_lost needs a standby and rebuilds it twice.
OPT_IN = ("db_host_lost",)
DEFAULT_ORDER = [name for name in SCENARIOS if name not in OPT_IN]


class CatalogError(ValueError):
    pass


def select(names=None, overrides=None):
    """The chosen scenarios, in the given order, each a copy with its ``name``.

    ``overrides`` maps a scenario name to keys replacing the catalogue's (used to point a scenario at
    another recovery playbook, e.g. in tests).
    """
    names = list(names or DEFAULT_ORDER)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise CatalogError("drill_scenarios: unknown scenario(s) %s; valid: %s"
                           % (", ".join(unknown), ", ".join(SCENARIOS)))
    if len(set(names)) != len(names):
        raise CatalogError("drill_scenarios: a scenario is listed twice: %s" % ", ".join(names))
    bad = [n for n in (overrides or {}) if n not in SCENARIOS]
    if bad:
        raise CatalogError("drill_scenario_overrides: unknown scenario(s) %s" % ", ".join(bad))
    chosen = []
    for name in names:
        scenario = copy.deepcopy(SCENARIOS[name])
        scenario.update(copy.deepcopy((overrides or {}).get(name, {})))
        scenario["name"] = name
        if not (scenario.get("effect") or {}).get("kind"):
            raise CatalogError("drill scenario %s has no effect probe: a fault that cannot be seen to take hold "
                               "cannot be drilled (give it an 'effect' with a kind)" % name)
        scenario.setdefault("prepare", [])
        scenario.setdefault("detect", "diagnose")
        scenario["recovery"].setdefault("expect", "success")
        chosen.append(scenario)
    return chosen


def availability(scenario, playbook_dir):
    """``None`` when every playbook the scenario needs exists, else ``unavailable: <playbook> missing``."""
    needed = list(scenario.get("prepare", [])) + [scenario["recovery"]["playbook"]]
    for playbook in needed:
        path = playbook if os.path.isabs(playbook) else os.path.join(playbook_dir, playbook)
        if not os.path.exists(path):
            return "unavailable: %s missing" % os.path.basename(playbook)
    return None


def render_vars(value, facts):
    """Fill ``{name}`` placeholders in recovery vars from facts recorded at injection time."""
    if isinstance(value, dict):
        return {k: render_vars(v, facts) for k, v in value.items()}
    if isinstance(value, list):
        return [render_vars(v, facts) for v in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in facts:
        return facts[value[1:-1]]
    return value
