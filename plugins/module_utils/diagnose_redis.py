# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Redis section of the diagnosis: ping, memory versus maxmemory, evictions, last RDB save.

``redis-cli`` gets the password as ``REDISCLI_AUTH`` (environment), never in argv.
"""

from __future__ import annotations

import time

_INT_FIELDS = ("used_memory", "maxmemory", "evicted_keys", "connected_clients", "rdb_changes_since_last_save",
               "rdb_last_save_time", "rejected_connections", "uptime_in_seconds")


def parse_info(text):
    """``INFO`` text -> {field: value} (numbers converted where they are integers)."""
    info = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        try:
            info[key] = int(value)
        except ValueError:
            info[key] = value
    return info


def summarize_info(info, now=None):
    """The fields diagnosis needs, with memory use as a percentage of ``maxmemory`` (None if unlimited)."""
    now = now if now is not None else time.time()
    out = {k: info.get(k) for k in _INT_FIELDS}
    out["version"] = info.get("redis_version")
    out["role"] = info.get("role")
    out["maxmemory_policy"] = info.get("maxmemory_policy")
    out["rdb_last_bgsave_status"] = info.get("rdb_last_bgsave_status")
    maxmemory = info.get("maxmemory") or 0
    used = info.get("used_memory") or 0
    out["memory_used_percent"] = round(100.0 * used / maxmemory, 1) if maxmemory else None
    last_save = info.get("rdb_last_save_time")
    out["rdb_last_save_age_s"] = int(now - last_save) if isinstance(last_save, int) and last_save > 0 else None
    return out


def collect(runner, redis_cli="redis-cli", host="127.0.0.1", port=6379, password=None, timeout=10):
    """The redis section: {ok, ping, error, ...summary}; a down Redis is reported, never raised."""
    argv = [redis_cli, "-h", host, "-p", str(port), "--no-auth-warning"]
    env = {"REDISCLI_AUTH": password} if password else {}
    out = {"ok": False, "ping": False, "errors": []}
    ping = runner.run(argv + ["PING"], env=env, timeout=timeout)
    answer = (ping.stdout or "").strip()
    out["ping"] = ping.rc == 0 and answer == "PONG"
    if not out["ping"]:
        out["errors"].append("ping: %s" % ((answer or ping.stderr).strip()[:300] or "rc=%s" % ping.rc))
        return out
    info = runner.run(argv + ["INFO"], env=env, timeout=timeout)
    if info.rc != 0 or "redis_version" not in info.stdout:
        out["errors"].append("info: %s" % ((info.stdout or info.stderr).strip()[:300]))
    else:
        out.update(summarize_info(parse_info(info.stdout)))
    out["ok"] = not out["errors"]
    return out
