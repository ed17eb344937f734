# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Effect probes: the drill sees with its own eyes that an injected fault took hold.

A probe is one look at the system that is not the diagnosis: the app's answer over HTTP, a
statement on the database, the app's error log, files on disk, a backup's checksum. ``wait_for``
repeats a look until it sees the fault or its bound runs out, and returns what it saw last either
way: a fault that never took hold is reported with the probe's last observation, never graded.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime, timezone

from ansible_collections.healthbutler.recovery.plugins.module_utils import pm2
from ansible_collections.healthbutler.recovery.plugins.module_utils.backup_catalog import sha256_file
from ansible_collections.healthbutler.recovery.plugins.module_utils.diagnose_app import http_probe, tail_lines
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import psql_argv
from ansible_collections.healthbutler.recovery.plugins.module_utils.redact import redact_text

KINDS = ("http", "sql", "pm2_log", "files_missing", "checksum", "pg_down")


class EffectError(ValueError):
    """The probe itself is wrongly specified (not a fault that failed to appear)."""


def _utc(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _epoch(text):
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def look_http(spec, fetch=http_probe):
    """Seen when the answer's status is one of ``status`` (0: nothing answered) and its body matches.

    With ``slower_than_s`` the answer must also have taken longer than that (a slow link, not a failure).
    """
    res = fetch(spec["url"], timeout=spec.get("timeout", 5), method=spec.get("method", "GET"),
                body=spec.get("body"))
    wanted = [int(s) for s in spec.get("status") or []]
    body_ok = not spec.get("body_regex") or re.search(spec["body_regex"], res.get("body") or "") is not None
    slow = spec.get("slower_than_s")
    slow_ok = slow is None or (res.get("time_total_s") or 0) > float(slow)
    seen = (not wanted or res["status"] in wanted) and body_ok and slow_ok
    answer = "no answer (%s)" % res["error"] if res["status"] == 0 else "%s %s" % (res["status"], res["body"][:200])
    took = " in %.2f s" % res["time_total_s"] if slow is not None and res.get("time_total_s") is not None else ""
    return seen, "%s %s: %s%s" % (spec.get("method", "GET"), redact_text(spec["url"]), answer, took)


def look_sql(spec, runner, conn):
    """Seen when the statement's JSON says so, or when it fails with an error matching ``error_regex``.

    The statement yields ``{"seen": bool, "observation": str}``.
    """
    res = runner.run(psql_argv(conn), env=conn.env(), data=spec["sql"], timeout=spec.get("timeout", 30))
    if res.rc != 0:
        err = redact_text(" ".join(res.stderr.split()))[-300:]
        if spec.get("error_regex") and re.search(spec["error_regex"], res.stderr):
            return True, "the statement failed as the fault makes it: %s" % err
        return False, "psql failed (rc=%s): %s" % (res.rc, err)
    try:
        value = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return False, "the probe statement gave no JSON: %r" % res.stdout[-200:]
    return bool(value.get("seen")), redact_text(str(value.get("observation", "")))


def look_pm2_log(spec, runner, pm2_bin, pm2_home):
    """Seen when the app's error log (the path PM2 reports) has a line matching ``regex``."""
    res = runner.run([pm2_bin, "jlist"], env={"PM2_HOME": pm2_home})
    try:
        proc = pm2.find_process(pm2.parse_jlist(res.stdout), spec["app"])
    except ValueError as exc:
        return False, "pm2 jlist unreadable: %s" % exc
    path = ((proc or {}).get("pm2_env") or {}).get("pm_err_log_path")
    if not path:
        return False, "PM2 knows no app %r with an error log" % spec["app"]
    try:
        lines = tail_lines(path, spec.get("lines", 400))
    except OSError as exc:
        return False, "cannot read %s: %s" % (path, exc)
    hits = [line for line in lines if re.search(spec["regex"], line)]
    if hits:
        return True, "%s: %d line(s) like %r" % (path, len(hits), redact_text(hits[-1].strip())[:200])
    return False, "%s: no line matching %r in the last %d" % (path, spec["regex"], len(lines))


def look_files_missing(spec):
    """Seen when every listed path (relative to ``root``) is gone."""
    paths = [os.path.join(spec["root"], p) for p in spec.get("paths") or []]
    if not paths:
        return False, "no files were named as removed"
    present = [p for p in paths if os.path.lexists(p)]
    if present:
        return False, "%d of %d removed file(s) still present, e.g. %s" % (len(present), len(paths), present[0])
    return True, "%d of %d file(s) missing under %s" % (len(paths), len(paths), spec["root"])


def look_checksum(spec):
    """Seen when the file's sha256 differs from its ``.sha256`` sidecar (``<hex>  <name>``)."""
    path = spec["path"]
    try:
        with open(path + ".sha256", encoding="utf-8") as fh:
            recorded = fh.read().split()[0]
        actual = sha256_file(path)
    except (OSError, IndexError) as exc:
        return False, "cannot compare %s with its sidecar: %s" % (path, exc)
    if actual != recorded:
        return True, "sha256 of %s is %s…, its sidecar says %s…" % (os.path.basename(path), actual[:12], recorded[:12])
    return False, "%s still matches its sidecar" % os.path.basename(path)


def pid_alive(pid):
    """The process exists (signal 0 reaches it, or it exists but is not ours)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def look_pg_down(spec, runner, conn, alive=pid_alive):
    """Seen when none of the killed server's ``pids`` lives and nothing accepts connections on its port."""
    pids = [int(p) for p in str(spec.get("pids") or "").split()]
    if not pids:
        return False, "no PostgreSQL PIDs were recorded as killed"
    living = [p for p in pids if alive(p)]
    ready = runner.run([conn.binary("pg_isready")] + conn.conn_args(dbname=False) + ["-t", "2"], env=conn.env())
    where = "port %s" % conn.port
    if living:
        counts = (len(living), len(pids), living[0])
        return False, "%d of %d killed PostgreSQL process(es) still alive, e.g. pid %s" % counts
    if ready.rc in (0, 1):
        return False, "all %d killed processes are gone but a server answers on %s (pg_isready rc=%s)" % (
            len(pids), where, ready.rc)
    return True, "postmaster and %d child process(es) gone; pg_isready on %s: no response" % (len(pids) - 1, where)


def wait_for(look, timeout, interval=1.0, since=None, clock=time.monotonic, wall=time.time, sleep=time.sleep):
    """Look until the fault is seen or ``timeout`` s pass: what was seen last, when, and after how long.

    ``since`` is the injection's start (ISO-8601): ``after_injection_s`` counts from it.
    """
    start = clock()
    attempts = 0
    while True:
        attempts += 1
        seen, observation = look()
        elapsed = clock() - start
        if seen or elapsed >= timeout:
            break
        sleep(min(interval, max(timeout - elapsed, 0)))
    now = wall()
    out = {"seen": bool(seen), "observation": observation, "attempts": attempts,
           "waited_s": round(elapsed, 3), "observed_at": _utc(now), "bound_s": timeout}
    out["after_injection_s"] = round(now - _epoch(since), 3) if since else None
    return out


def validate(spec):
    """Raise ``EffectError`` naming what is wrong with a probe specification."""
    kind = spec.get("kind")
    if kind not in KINDS:
        raise EffectError("effect probe kind %r is not one of %s" % (kind, ", ".join(KINDS)))
    required = {"http": ("url",), "sql": ("sql",), "pm2_log": ("app", "regex"), "files_missing": ("root",),
                "checksum": ("path",), "pg_down": ("pids",)}[kind]
    missing = [k for k in required if not spec.get(k)]
    if missing:
        raise EffectError("effect probe %s needs %s" % (kind, ", ".join(missing)))


def fill(value, facts):
    """Replace ``{name}`` in strings (and lists of strings) with the facts recorded at injection."""
    if isinstance(value, list):
        return [fill(v, facts) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, facts) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in facts:
        return facts[value[1:-1]]
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: str(facts[m.group(1)]) if m.group(1) in facts else m.group(0), value)
    return value


def resolve(spec, facts=None, app_url=None, app_name=None, uploads_dir=None):
    """The probe as it runs: placeholders filled, the site's URL, app name and uploads directory applied."""
    out = fill(dict(spec), facts or {})
    if out.get("kind") == "http" and not out.get("url") and app_url:
        out["url"] = app_url.rstrip("/") + out.get("path", "/health")
    if out.get("kind") == "pm2_log":
        out.setdefault("app", app_name)
    if out.get("kind") == "files_missing":
        out.setdefault("root", uploads_dir)
    validate(out)
    return out


def host_role(kind):
    """Where a probe of this kind must run: the controller (as users see the app), the db, app or backup host."""
    return {"http": "controller", "sql": "db", "pm2_log": "app", "files_missing": "app", "checksum": "backup",
            "pg_down": "db"}[kind]
