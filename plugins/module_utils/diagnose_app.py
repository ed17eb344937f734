# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""App section of the diagnosis: the PM2 process, the port, HTTP probes, the error log.

The runbook's ``pm2 status``, ``netstat -tlnp | grep 3000``, ``curl -w`` and
``pm2 logs --err --lines N`` in one pass. Log lines are redacted before they
leave the host.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import urllib.error

from ansible.module_utils.urls import open_url

from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_logs, diagnose_probe, env_file, pm2
from ansible_collections.healthbutler.recovery.plugins.module_utils.redact import env_key_report, redact_text
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError

# Known signatures of the runbook's scenarios, counted in the error log tail.
LOG_SIGNATURES = {
    "heap_out_of_memory": re.compile(r"JavaScript heap out of memory|Reached heap limit|FATAL ERROR: .*heap",
                                     re.IGNORECASE),
    "cannot_connect_database": re.compile(r"Cannot connect to database", re.IGNORECASE),
    "prisma_connection": re.compile(r"PrismaClient\w*Error|\bP10(?:01|02|17)\b|Can't reach database server"),
    "econnrefused": re.compile(r"ECONNREFUSED"),
}
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def parse_proc_net_tcp(text):
    """Ports in LISTEN state from ``/proc/net/tcp`` or ``tcp6`` text."""
    ports = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == _LISTEN and ":" in fields[1]:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def port_listening(port, proc_root="/proc"):
    """{port, listening, method}: from /proc/net/tcp{,6}, else by connecting to 127.0.0.1."""
    ports, read_any = set(), False
    for name in ("tcp", "tcp6"):
        try:
            with open(os.path.join(proc_root, "net", name), encoding="ascii") as fh:
                ports |= parse_proc_net_tcp(fh.read())
                read_any = True
        except OSError:
            continue
    if read_any:
        return {"port": int(port), "listening": int(port) in ports, "method": "proc_net_tcp"}
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=2):
            return {"port": int(port), "listening": True, "method": "connect"}
    except OSError:
        return {"port": int(port), "listening": False, "method": "connect"}


def http_probe(url, timeout=5, method="GET", body=None):
    """Like ``curl -w '%{http_code} %{time_total}'``: {url, status, time_total_s, error, body}.

    ``status`` is 0 when nothing answered. ``body`` (a dict) is sent as JSON. The answer's body is
    kept only when it is short JSON-ish text (e.g. /health naming failed components), and is redacted.
    """
    headers = {"User-Agent": "healthbutler.recovery/diagnose"}
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    start = time.monotonic()
    status, body, error = 0, "", None
    try:
        with open_url(url, data=data, method=method, timeout=timeout, headers=headers) as resp:
            status, body = resp.status, resp.read(4096).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            body = exc.read(4096).decode("utf-8", "replace")
        except OSError:
            body = ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = str(getattr(exc, "reason", exc))
    elapsed = round(time.monotonic() - start, 3)
    return {"url": redact_text(url), "status": status, "time_total_s": elapsed, "error": error,
            "body": redact_text(body[:1000]) if body else ""}


def tail_lines(path, lines, max_bytes=1024 * 1024):
    """The last ``lines`` lines of ``path`` (reads at most ``max_bytes`` from the end)."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        data = fh.read().decode("utf-8", "replace")
    return data.splitlines()[-lines:] if lines > 0 else []


def count_signatures(lines, signatures=None):
    """{signature: count} over ``lines`` for every known (or given) signature."""
    signatures = signatures or LOG_SIGNATURES
    return {name: sum(1 for line in lines if rx.search(line)) for name, rx in signatures.items()}


def error_log(path, lines=100, now=None):
    """Tail of the PM2 error log: {path, lines (redacted), signatures, age_s (since last write)}."""
    out = {"path": path, "lines": [], "signatures": count_signatures([]), "age_s": None}
    if not path:
        out["error"] = "no error log path known"
        return out
    try:
        tail = tail_lines(path, lines)
        out["age_s"] = int((now if now is not None else time.time()) - os.stat(path).st_mtime)
    except OSError as exc:
        out["error"] = "cannot read %s: %s" % (path, exc.strerror or exc)
        return out
    out["signatures"] = count_signatures(tail)
    out["lines"] = [redact_text(line)[:500] for line in tail]
    out["summary"] = diagnose_logs.summarize(tail)
    return out


def env_keys(path):
    """The runbook's ``cat .env | grep -v '^#'``, made safe: [{key, set, value (redacted)}]."""
    try:
        with open(path, encoding="utf-8") as fh:
            return {"path": path, "keys": env_key_report(fh.read())}
    except OSError as exc:
        return {"path": path, "error": "cannot read %s: %s" % (path, exc.strerror or exc), "keys": []}


def collect(runner, pm2_bin, pm2_home, app_name, port=None, health_url=None, api_urls=(), http_timeout=5,
            log_lines=100, env_file=None, proc_root="/proc", probes=None, ss_bin="ss"):
    """The app section. Never raises for a down component: each part reports what it saw.

    ``probes`` (a dict, see ``user_probes``) adds what the app's users get: the app's own database
    user reading and writing (rolled back), its Redis URL, p95 latency, and the ``.env`` versus the
    newest file backup.
    """
    out = {"ok": True, "errors": [], "process": None, "pm2": {"reachable": False}}
    try:
        processes = pm2.jlist(runner, pm2_bin, pm2_home)
        out["pm2"] = {"reachable": True, "processes": len(processes)}
        out["process"] = pm2.process_summary(pm2.find_process(processes, app_name))
    except CommandError as exc:
        out["pm2"]["error"] = exc.msg
        out["errors"].append("pm2: %s" % exc.msg)
    out["port"] = port_listening(port, proc_root) if port else None
    if out["port"] and out["port"]["listening"]:
        if ss_bin:
            out["port"].update(diagnose_probe.port_holders(runner, port, proc_root, ss_bin))
        else:
            out["port"]["error"] = "ss not found on this host: the port's holder is unknown"
    out["health"] = http_probe(health_url, http_timeout) if health_url else None
    out["api"] = [http_probe(url, http_timeout) for url in api_urls or ()]
    err_log = (out["process"] or {}).get("pm_err_log_path") or (
        os.path.join(pm2_home, "logs", "%s-error.log" % app_name) if pm2_home and app_name else None)
    out["error_log"] = error_log(err_log, log_lines)
    if env_file:
        out["env"] = env_keys(env_file)
    if probes is not None:
        out["users"] = user_probes(runner, env_file, out["health"], http_timeout, health_url=health_url, **probes)
    out["ok"] = not out["errors"]
    return out


def user_probes(runner, env_path, health, http_timeout=5, psql_bin="psql", redis_cli="redis-cli",
                db_url_key="DATABASE_URL", redis_url_key="REDIS_URL", read_sql=diagnose_probe.DEFAULT_READ_SQL,
                write_sql=diagnose_probe.DEFAULT_WRITE_SQL, write=True, latency_samples=5, env_backup_dir=None,
                health_url=None):
    """What the app's users get, with the app's own configuration (values of the ``.env`` stay here)."""
    out = {"db": None, "redis": None, "latency": None, "env_backup": None}
    values = {}
    if env_path:
        try:
            values = env_file.read_env(env_path)
        except OSError as exc:
            out["error"] = "cannot read %s: %s" % (env_path, exc.strerror or exc)
    missing = [name for name, path in (("psql", psql_bin), ("redis-cli", redis_cli)) if not path]
    if missing:
        out["error"] = "not found on this host: %s (those probes are skipped)" % ", ".join(missing)
    if values.get(db_url_key) and psql_bin:
        out["db"] = dict(diagnose_probe.db_user_probe(runner, psql_bin, values[db_url_key], read_sql, write_sql,
                                                      write), key=db_url_key)
    if values.get(redis_url_key) and redis_cli:
        out["redis"] = dict(diagnose_probe.redis_user_probe(runner, redis_cli, values[redis_url_key]),
                            key=redis_url_key)
    if health_url and health and health.get("status"):
        out["latency"] = diagnose_probe.latency(lambda u: http_probe(u, http_timeout), health_url,
                                                latency_samples, first=health)
    if env_path and env_backup_dir:
        out["env_backup"] = diagnose_probe.env_vs_backup(env_path, env_backup_dir)
    return out
