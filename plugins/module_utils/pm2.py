# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""PM2 process list: parse ``pm2 jlist`` and summarise one process safely.

``pm2 jlist`` may print text (daemon start-up notices, warnings) before its JSON,
and each process's ``pm2_env`` holds the app's whole environment, secrets
included. ``process_summary`` therefore copies named fields only and never
returns ``pm2_env`` (or ``env``) whole.
"""

from __future__ import annotations

import json
import time

from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError

# axm_monitor metric names PM2 reports for Node apps -> our keys.
_HEAP_METRICS = {"Heap Size": "heap_total_mb", "Used Heap Size": "heap_used_mb", "Heap Usage": "heap_usage_percent",
                 "Event Loop Latency p95": "event_loop_p95_ms", "HTTP P95 Latency": "http_p95_ms"}


def parse_jlist(text):
    """Return the list of processes from ``pm2 jlist`` output, skipping any text before the JSON.

    Raises ``ValueError`` when no JSON array can be found.
    """
    text = text or ""
    decoder = json.JSONDecoder()
    start = text.find("[")
    while start != -1:
        try:
            value, _end = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("[", start + 1)
            continue
        if isinstance(value, list) and all(isinstance(p, dict) for p in value):
            return value
        start = text.find("[", start + 1)
    raise ValueError("no JSON process list in pm2 jlist output: %r" % text[:200])


def find_process(processes, name):
    """The process called ``name`` (first match), or None."""
    return next((p for p in processes if p.get("name") == name), None)


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def heap_stats(pm2_env):
    """Node heap statistics from PM2's ``axm_monitor`` (MiB/%), or {} when the app reports none."""
    monitor = (pm2_env or {}).get("axm_monitor") or {}
    out = {}
    for metric, key in _HEAP_METRICS.items():
        value = _number((monitor.get(metric) or {}).get("value"))
        if value is not None:
            out[key] = value
    return out


def process_summary(proc, now=None):
    """A safe summary of one ``pm2 jlist`` entry: status, pid, restarts, memory, uptime, exit code, logs.

    Only named fields are copied; ``pm2_env`` (the app's environment) is never returned.
    """
    if proc is None:
        return None
    env = proc.get("pm2_env") or {}
    monit = proc.get("monit") or {}
    now_ms = (now if now is not None else time.time()) * 1000
    status = env.get("status", "unknown")
    pm_uptime = env.get("pm_uptime")
    uptime_s = None
    if status == "online" and isinstance(pm_uptime, (int, float)) and pm_uptime > 0:
        uptime_s = max(0, int((now_ms - pm_uptime) / 1000))
    summary = {
        "name": proc.get("name"),
        "pm_id": proc.get("pm_id"),
        "pid": proc.get("pid") or 0,
        "status": status,
        "restart_time": env.get("restart_time", 0),
        "unstable_restarts": env.get("unstable_restarts", 0),
        "uptime_s": uptime_s,
        "exit_code": env.get("exit_code"),
        "memory_bytes": monit.get("memory"),
        "cpu_percent": monit.get("cpu"),
        "node_args": [a for a in (env.get("node_args") or []) if isinstance(a, str) and a.startswith("--")],
        "heap": heap_stats(env),
        "gave_up": gave_up(status, proc.get("pid"), env),
    }
    for field in ("pm_exec_path", "pm_cwd", "exec_mode", "min_uptime", "max_restarts", "pm_out_log_path",
                  "pm_err_log_path", "autorestart", "node_version", "version"):
        if field in env:
            summary[field] = env[field]
    return summary


def gave_up(status, pid, env):
    """True when PM2 has stopped restarting a crash loop for good.

    PM2 marks it errored, but with ``restart_delay`` set the status is then overwritten with
    "waiting restart" and no restart is scheduled. What tells it apart from the pause between two
    restarts of a live loop is that PM2 clears ``created_at`` and ``unstable_restarts`` when it
    gives up (and ``restart_time`` stops one short of ``max_restarts`` on a fresh process).
    """
    if status == "errored":
        return True
    return (status == "waiting restart" and not pid and "created_at" in env and env["created_at"] is None
            and not env.get("unstable_restarts"))


def jlist(runner, pm2_bin, pm2_home, timeout=30):
    """Run ``pm2 jlist`` with ``PM2_HOME`` set and return the parsed process list.

    Raises ``CommandError`` when pm2 fails or prints no process list.
    """
    argv = [pm2_bin, "jlist"]
    res = runner.run(argv, env={"PM2_HOME": pm2_home}, timeout=timeout)
    if res.rc != 0:
        raise CommandError("pm2 jlist failed (rc=%s)" % res.rc, argv, res.rc, "", res.stderr[-2000:])
    try:
        return parse_jlist(res.stdout)
    except ValueError as exc:
        raise CommandError(str(exc), argv, res.rc, "", res.stderr[-2000:]) from exc
