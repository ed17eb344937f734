# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""What the app's users get, probed from the app host with the app's own configuration.

- ``db_user_probe``: connect as the app's database user (from the app's ``.env``), a real read,
  and a real write in a transaction that is always rolled back.
- ``redis_user_probe``: PING with the app's ``REDIS_URL``.
- ``port_holders``: who listens on the app port (``ss -ltnp``), pid and command.
- ``env_vs_backup``: the ``.env`` keys whose values differ from the newest file backup (names
  only; for URLs, which part differs), with both files' times.
- ``latency``: p95 of a few sequential probes of the health URL.

Passwords from the ``.env`` reach ``psql`` as ``PGPASSWORD`` and ``redis-cli`` as
``REDISCLI_AUTH``, never argv; no value of the ``.env`` leaves this module.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import time
import urllib.parse

from ansible_collections.healthbutler.recovery.plugins.module_utils import env_file, psql
from ansible_collections.healthbutler.recovery.plugins.module_utils.redact import redact_text

# Health Butler's own path: read the newest health_data row; insert one (rolled back).
DEFAULT_READ_SQL = "SELECT id FROM health_data ORDER BY id DESC LIMIT 1"
DEFAULT_WRITE_SQL = ("INSERT INTO health_data (user_id, metric, value) "
                     "SELECT id, 'diagnose_probe', 0 FROM users ORDER BY id LIMIT 1")

# No route from this host to the server (libpq, redis-cli, Node's errno): the network, not the server.
UNREACHABLE = r"No route to host|Network is unreachable|\bEHOSTUNREACH\b|\bENETUNREACH\b"

# Why a statement or connection as the app's user failed, from libpq/PostgreSQL's message.
# Order matters: the first match wins.
DB_ERROR_REASONS = (
    ("authentication", re.compile(r"password authentication failed|no pg_hba\.conf entry|"
                                  r"authentication failed|role \S+ does not exist", re.IGNORECASE)),
    ("wraparound", re.compile(r"to avoid wraparound data loss|wraparound", re.IGNORECASE)),
    ("disk_full", re.compile(r"No space left on device|could not extend file|could not write to file",
                             re.IGNORECASE)),
    ("in_recovery", re.compile(r"during recovery|in recovery mode|hot standby", re.IGNORECASE)),
    ("read_only", re.compile(r"read-only transaction", re.IGNORECASE)),
    ("lock_timeout", re.compile(r"canceling statement due to lock timeout", re.IGNORECASE)),
    ("statement_timeout", re.compile(r"canceling statement due to statement timeout", re.IGNORECASE)),
    ("too_many_connections", re.compile(r"too many clients|remaining connection slots are reserved|"
                                        r"too many connections for role", re.IGNORECASE)),
    ("starting_up", re.compile(r"the database system is (starting up|shutting down)", re.IGNORECASE)),
    ("name_not_found", re.compile(r"could not translate host name|Name or service not known|"
                                  r"Temporary failure in name resolution", re.IGNORECASE)),
    ("refused", re.compile(r"Connection refused", re.IGNORECASE)),
    ("unreachable", re.compile(UNREACHABLE, re.IGNORECASE)),
    ("timeout", re.compile(r"timeout expired|timed out", re.IGNORECASE)),
    ("no_database", re.compile(r"database \S+ does not exist", re.IGNORECASE)),
    ("permission", re.compile(r"permission denied", re.IGNORECASE)),
)

REDIS_ERROR_REASONS = (
    ("authentication", re.compile(r"WRONGPASS|NOAUTH|invalid password|invalid username-password", re.IGNORECASE)),
    ("name_not_found", re.compile(r"Name or service not known|Could not resolve|nodename nor servname|"
                                  r"Temporary failure in name resolution", re.IGNORECASE)),
    ("refused", re.compile(r"Connection refused", re.IGNORECASE)),
    ("unreachable", re.compile(UNREACHABLE, re.IGNORECASE)),
    ("timeout", re.compile(r"timed out|timeout", re.IGNORECASE)),
    ("read_only", re.compile(r"READONLY", re.IGNORECASE)),
    ("disk_full", re.compile(r"MISCONF|No space left", re.IGNORECASE)),
)


def error_reason(message, table=DB_ERROR_REASONS):
    for reason, rx in table:
        if rx.search(message or ""):
            return reason
    return "other"


def parse_url(url, default_port=None):
    """``scheme://user:password@host:port/path`` -> {scheme, host, port, user, password, path}; None if no host."""
    try:
        parts = urllib.parse.urlsplit(url or "")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return {"scheme": parts.scheme, "host": parts.hostname, "port": port or default_port,
            "user": urllib.parse.unquote(parts.username) if parts.username else None,
            "password": urllib.parse.unquote(parts.password) if parts.password is not None else None,
            "path": urllib.parse.unquote(parts.path.lstrip("/"))}


def target(parsed):
    """``host:port`` of a parsed URL (no user, no password)."""
    return "%s:%s" % (parsed["host"], parsed["port"]) if parsed else None


def url_parts_changed(old, new):
    """Which parts of a URL value differ (``password``, ``host``...), or None when a value is no URL."""
    a, b = parse_url(old), parse_url(new)
    if not a or not b:
        return None
    return [k for k in ("scheme", "user", "password", "host", "port", "path") if a[k] != b[k]]


def _stamp(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _db_failure(res, secrets):
    message = redact_text((res.stderr or res.stdout or "rc=%s" % res.rc).strip(), secrets)[-400:]
    return {"ok": False, "error": message, "reason": error_reason(message)}


def db_user_probe(runner, psql_bin, url, read_sql=DEFAULT_READ_SQL, write_sql=DEFAULT_WRITE_SQL, write=True,
                  timeout=10, lock_timeout_ms=2000):
    """Connect as the app's database user from ``url`` (the app's DATABASE_URL); read, then write and roll back.

    Returns {target, user, database, read: {ok, error, reason}, write: {ok, error, reason} or None}.
    A lock that makes the probe wait is ``reason: lock_timeout`` (a write delayed, not refused).
    """
    parsed = parse_url(url, 5432)
    if not parsed:
        return {"error": "the app's database URL has no host", "read": None, "write": None}
    conn = psql.Conn(parsed["host"], parsed["port"], parsed["user"], parsed["password"], parsed["path"] or None,
                     connect_timeout=5)
    argv = [psql_bin, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"] + conn.conn_args(dbname=bool(parsed["path"]))
    env = conn.env()
    secrets = [parsed["password"]] if parsed["password"] else []
    guard = "SET lock_timeout = %d; SET statement_timeout = %d;\n" % (int(lock_timeout_ms), int(timeout * 1000))
    out = {"target": target(parsed), "user": parsed["user"], "database": parsed["path"], "read": None, "write": None}
    start = time.monotonic()
    res = runner.run(argv, env=env, data=guard + "SELECT json_build_object('rows', (SELECT count(*) FROM (%s) s), "
                     "'transaction_read_only', current_setting('transaction_read_only'), "
                     "'in_recovery', pg_is_in_recovery());\n" % read_sql.rstrip().rstrip(";"),
                     timeout=timeout + 5)
    out["read"] = {"ok": True, "time_s": round(time.monotonic() - start, 3)} if res.rc == 0 else _db_failure(
        res, secrets)
    if res.rc == 0:
        out["read"].update(_json_or_empty(res.stdout))
    if write and (res.rc == 0 or out["read"]["reason"] in ("lock_timeout", "statement_timeout")):
        start = time.monotonic()
        res = runner.run(argv, env=env, data=guard + "BEGIN;\n%s;\nROLLBACK;\n" % write_sql.rstrip().rstrip(";"),
                         timeout=timeout + 5)
        out["write"] = ({"ok": True, "rolled_back": True, "time_s": round(time.monotonic() - start, 3)}
                        if res.rc == 0 else _db_failure(res, secrets))
    return out


def _json_or_empty(text):
    try:
        value = json.loads((text or "").strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}
    return value if isinstance(value, dict) else {}


def redis_user_probe(runner, redis_cli, url, timeout=5):
    """PING with the app's REDIS_URL: {target, ok, error, reason}."""
    parsed = parse_url(url, 6379)
    if not parsed:
        return {"error": "the app's Redis URL has no host", "ok": False, "reason": "other"}
    argv = [redis_cli, "-h", parsed["host"], "-p", str(parsed["port"]), "--no-auth-warning"]
    if parsed["user"]:
        argv += ["--user", parsed["user"]]
    if parsed["path"].isdigit():
        argv += ["-n", parsed["path"]]
    env = {"REDISCLI_AUTH": parsed["password"]} if parsed["password"] else {}
    res = runner.run(argv + ["PING"], env=env, timeout=timeout)
    answer = (res.stdout or "").strip()
    out = {"target": target(parsed), "ok": res.rc == 0 and answer == "PONG"}
    if not out["ok"]:
        message = redact_text((answer or res.stderr or "rc=%s" % res.rc).strip(),
                              [parsed["password"]] if parsed["password"] else [])[-300:]
        out.update(error=message, reason=error_reason(message, REDIS_ERROR_REASONS))
    return out


_SS_USER = re.compile(r'\("(?P<command>[^"]*)",pid=(?P<pid>\d+),fd=\d+\)')


def parse_ss(text, port):
    """``ss -H -ltnp`` lines -> [{address, pid, command}] of the listeners on ``port``."""
    holders = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3].rsplit(":", 1)[-1] != str(port):
            continue
        users = list(_SS_USER.finditer(line))
        if not users:
            holders.append({"address": fields[3], "pid": None, "command": None})
        for m in users:
            holders.append({"address": fields[3], "pid": int(m.group("pid")), "command": m.group("command")})
    return holders


def process_cmdline(pid, proc_root="/proc", max_len=200):
    """The redacted, shortened command line of ``pid`` (arguments can hold secrets), or None."""
    try:
        with open(os.path.join(proc_root, str(pid), "cmdline"), "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    text = raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()
    return redact_text(text)[:max_len] or None


def port_holders(runner, port, proc_root="/proc", ss_bin="ss"):
    """{port, holders: [{address, pid, command, cmdline}], error}: who listens on ``port`` (``ss -ltnp``).

    Without privileges ``ss`` shows no process for other users' sockets: pid/command are then None.
    """
    res = runner.run([ss_bin, "-H", "-l", "-t", "-n", "-p", "sport = :%d" % int(port)], timeout=10)
    if res.rc != 0:
        return {"port": int(port), "holders": [], "error": "ss: rc=%s %s" % (res.rc, res.stderr.strip()[:200])}
    holders = parse_ss(res.stdout, port)
    for h in holders:
        h["cmdline"] = process_cmdline(h["pid"], proc_root) if h["pid"] else None
    return {"port": int(port), "holders": holders}


def newest_file_backup(root):
    """The newest complete file backup under ``root`` (``<stamp>/env``; ``.partial`` ones skipped), or None."""
    try:
        names = sorted(n for n in os.listdir(root) if not n.startswith(".") and os.path.isdir(os.path.join(root, n)))
    except OSError:
        return None
    for name in reversed(names):
        if os.path.exists(os.path.join(root, name, "env")):
            return {"name": name, "env": os.path.join(root, name, "env")}
    return None


def env_vs_backup(path, backup_root):
    """Compare the live ``.env`` with the newest file backup's ``env``; key names only.

    Returns {path, mtime, backup, backup_mtime, changed: [{key, parts}], added, removed, differ, error}.
    ``added`` keys are only in the backup, ``removed`` only in the live file; ``parts`` names the
    differing parts of a URL value (``["password"]``) or is None.
    """
    out = {"path": path, "backup_root": backup_root, "backup": None, "differ": False,
           "changed": [], "added": [], "removed": []}
    try:
        live = env_file.read_env(path)
        out["mtime"] = _stamp(os.stat(path).st_mtime)
    except OSError as exc:
        out["error"] = "cannot read %s: %s" % (path, exc.strerror or exc)
        return out
    backup = newest_file_backup(backup_root) if backup_root else None
    if not backup:
        out["error"] = "no file backup under %s" % backup_root
        return out
    try:
        saved = env_file.read_env(backup["env"])
        out["backup_mtime"] = _stamp(os.stat(backup["env"]).st_mtime)
    except OSError as exc:
        out["error"] = "cannot read %s: %s" % (backup["env"], exc.strerror or exc)
        return out
    out["backup"] = backup["name"]
    diff = env_file.diff_keys(live, saved)
    out["changed"] = [{"key": k, "parts": url_parts_changed(saved[k], live[k])} for k in diff["changed"]]
    out["added"], out["removed"], out["differ"] = diff["added"], diff["removed"], diff["differ"]
    return out


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of ``values``; None when empty."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    rank = max(1, int(math.ceil(q / 100.0 * len(values))))
    return values[rank - 1]


def latency(probe, url, samples=5, budget_s=10.0, first=None):
    """{samples, p95_s, max_s, statuses}: ``samples`` sequential probes of ``url`` (``probe(url)`` -> dict).

    ``first`` is a probe already made (it counts as one sample). Stops early when ``budget_s`` is
    spent, so a slow app does not make the diagnosis slow.
    """
    results = [first] if first else []
    spent = sum(r.get("time_total_s") or 0 for r in results)
    while len(results) < max(0, int(samples)) and spent < budget_s:
        result = probe(url)
        results.append(result)
        spent += result.get("time_total_s") or 0
    times = [r.get("time_total_s") for r in results if r.get("status")]
    return {"samples": len(results), "p95_s": percentile(times, 95), "max_s": max(times) if times else None,
            "statuses": [r.get("status") for r in results]}
