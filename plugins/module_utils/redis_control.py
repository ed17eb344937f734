# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""A scoped Redis cache clear through ``redis-cli``, snapshot first.

Scopes: ``pattern`` (SCAN MATCH + UNLINK in batches, in one logical db),
``db`` (FLUSHDB of one logical db) and ``all`` (FLUSHALL, only with an explicit
confirmation). Before anything is removed BGSAVE runs, is waited for, and the
RDB file is copied aside. The password reaches redis-cli as ``REDISCLI_AUTH``.
"""

from __future__ import annotations

import os
import re
import shutil
import time

from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError, RecoveryError

SCOPES = ("pattern", "db", "all")


class RedisError(RecoveryError):
    """A Redis input was refused or a Redis operation failed."""


def validate(scope, pattern, confirm_flushall):
    """Raise ``RedisError`` naming the bad input before anything runs."""
    if scope not in SCOPES:
        raise RedisError("scope must be one of %s, got %r" % (", ".join(SCOPES), scope))
    if scope == "pattern" and (not pattern or pattern.strip("*") == ""):
        raise RedisError("scope=pattern needs a pattern narrower than '*' (for example 'cache:*'); "
                         "use scope=db to clear one logical db")
    if scope == "all" and confirm_flushall is not True:
        raise RedisError("scope=all runs FLUSHALL on every db; set confirm_flushall=true to allow it")


def parse_info(text):
    """INFO output → {field: value} (str values; '# Section' lines skipped)."""
    out = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            key, value = line.split(":", 1)
            out[key] = value
    return out


def keyspace_counts(info):
    """{'db0': 12, ...} from the Keyspace section of INFO."""
    counts = {}
    for key, value in info.items():
        if re.fullmatch(r"db\d+", key):
            match = re.search(r"keys=(\d+)", value)
            counts[key] = int(match.group(1)) if match else 0
    return counts


def save_marker(info):
    """A value that grows with every finished save: ``rdb_saves`` (Redis 7+), else the last save time."""
    if "rdb_saves" in info:
        return int(info["rdb_saves"])
    return int(info.get("rdb_last_save_time", "0"))


def batches(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Redis:
    """redis-cli against one server; ``db`` selects the logical database."""

    def __init__(self, runner, cli="redis-cli", host="127.0.0.1", port=6379, password=None,
                 sleep=time.sleep, clock=time.monotonic):
        self.runner = runner
        self.cli = cli
        self.host = host
        self.port = int(port)
        self.env = {"REDISCLI_AUTH": password} if password else {}
        self.sleep = sleep
        self.clock = clock

    def cmd(self, *args, db=0):
        argv = [self.cli, "-h", self.host, "-p", str(self.port), "-n", str(db)] + [str(a) for a in args]
        res = self.runner.run(argv, env=self.env, timeout=120)
        out = res.stdout.strip()
        # redis-cli exits 0 on most server errors; the reply says so.
        if res.rc != 0 or out.startswith(("ERR", "NOAUTH", "WRONGPASS", "MISCONF", "Could not connect")) \
                or "NOAUTH" in res.stderr:
            raise CommandError("redis-cli %s failed: %s" % (args[0], (out or res.stderr.strip())[-500:]),
                               argv, res.rc, res.stdout[-1000:], res.stderr[-1000:])
        return out

    def info(self, section=""):
        return parse_info(self.cmd("INFO", section) if section else self.cmd("INFO"))

    def scan(self, pattern, db, count=500):
        """Every key of ``db`` matching ``pattern``: SCAN cursor MATCH ... COUNT ..., never KEYS."""
        keys, cursor = set(), "0"
        while True:
            lines = self.cmd("SCAN", cursor, "MATCH", pattern, "COUNT", count, db=db).splitlines()
            if not lines or not lines[0].strip().isdigit():
                raise RedisError("unexpected SCAN reply: %r" % "\n".join(lines)[:200])
            cursor = lines[0].strip()
            keys.update(k for k in lines[1:] if k)
            if cursor == "0":
                return sorted(keys)

    def config(self, name):
        lines = self.cmd("CONFIG", "GET", name).splitlines()
        return lines[1] if len(lines) > 1 else None

    def rdb_path(self, override=None):
        if override:
            return override
        directory, name = self.config("dir"), self.config("dbfilename")
        if not directory or not name:
            raise RedisError("cannot read the RDB location (CONFIG GET dir/dbfilename); set rdb_path")
        return os.path.join(directory, name)

    def snapshot(self, backup_dir, rdb_override=None, timeout=120, stamp=None):
        """BGSAVE, wait for it to finish with status ok, copy the RDB file into ``backup_dir``."""
        before = save_marker(self.info("persistence"))
        deadline = self.clock() + timeout
        while True:
            try:
                self.cmd("BGSAVE")
                break
            except CommandError as exc:
                # A save (or AOF rewrite) already running: wait for it, then ask again.
                if "in progress" not in exc.msg or self.clock() >= deadline:
                    raise
                self.sleep(0.5)
        while True:
            info = self.info("persistence")
            if info.get("rdb_bgsave_in_progress") == "0" and save_marker(info) > before:
                break
            if self.clock() >= deadline:
                raise RedisError("BGSAVE did not finish within %ss" % timeout)
            self.sleep(0.2)
        if info.get("rdb_last_bgsave_status") != "ok":
            raise RedisError("BGSAVE failed (rdb_last_bgsave_status=%s); nothing was removed"
                             % info.get("rdb_last_bgsave_status"))
        source = self.rdb_path(rdb_override)
        os.makedirs(backup_dir, mode=0o700, exist_ok=True)
        dest = os.path.join(backup_dir, "redis-%s-%s.rdb" % (self.port, stamp or time.strftime("%Y%m%dT%H%M%SZ",
                                                                                               time.gmtime())))
        shutil.copy2(source, dest)
        os.chmod(dest, 0o600)
        return {"source": source, "path": dest, "size": os.path.getsize(dest)}


def plan_clear(redis, scope, db, pattern, count=500):
    """What a clear would remove: {'keys': n, 'by_db': {...}, 'matched': [...] (pattern only)}."""
    if scope == "pattern":
        keys = redis.scan(pattern, db, count)
        return {"keys": len(keys), "matched": keys}
    counts = keyspace_counts(redis.info("keyspace"))
    if scope == "db":
        return {"keys": counts.get("db%d" % db, 0)}
    return {"keys": sum(counts.values()), "by_db": counts}


def clear(redis, scope, db, planned, batch_size=500):
    """Remove what ``planned`` describes; return the number of keys removed."""
    if scope == "pattern":
        removed = 0
        for chunk in batches(planned["matched"], batch_size):
            removed += int(redis.cmd("UNLINK", *chunk, db=db) or 0)
        return removed
    if scope == "db":
        redis.cmd("FLUSHDB", db=db)
    else:
        redis.cmd("FLUSHALL")
    return planned["keys"]
