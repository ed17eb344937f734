# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""The user impact of an incident and its most likely cause, in one sentence.

``impact`` rates what users lose (the app answers? /health 200? a real read and a real
rolled-back write as the app's database user? p95 latency) and gives the P-level that loss
deserves. ``causes`` names the likely causes, best first, each with the evidence it rests on
and the playbook or manual step that fixes it; ``cause_unknown`` says so when none fits.
Both read diagnose facts only (``pairs`` of (host, facts)); nothing here guesses.
"""

from __future__ import annotations

# Probe failures that say "busy", not "refused": a lock or our own connection slot, not the users' loss.
TRANSIENT = ("lock_timeout", "statement_timeout", "too_many_connections")
WRITE_REFUSALS = ("read_only", "in_recovery", "disk_full", "wraparound")
# Probe failures that say "cannot reach the server"; of them, the ones a cut network gives.
CANNOT_REACH = ("refused", "unreachable", "timeout", "name_not_found")
NETWORK_CUT = ("unreachable", "timeout")
# Findings on the db host that explain a slow read there, not on the wire.
DB_HOST_SLOW = ("db_slow_statements", "db_locks_waiting", "host_cpu_high")

PLAYBOOK_RESTORE_FILES = "healthbutler.recovery.restore_files"
PLAYBOOK_ROLLBACK = "healthbutler.recovery.rollback"
PLAYBOOK_RESTART_APP = "healthbutler.recovery.restart_app"
PLAYBOOK_DB = "healthbutler.recovery.recover_db_connection"
PLAYBOOK_RECOVER_DB = "healthbutler.recovery.recover_db"

REASON_WORDS = {
    "authentication": "authentication fails", "name_not_found": "the host name is not found",
    "refused": "the connection is refused", "unreachable": "there is no route to the host",
    "timeout": "the connection times out",
    "read_only": "the transaction is read-only", "in_recovery": "the server is in recovery",
    "disk_full": "the disk is full", "wraparound": "it refuses commands to avoid transaction ID wraparound",
    "too_many_connections": "no connection slot is left", "lock_timeout": "it waits for a lock",
    "statement_timeout": "the statement times out", "starting_up": "the server is starting or stopping",
    "no_database": "the database does not exist", "permission": "permission is denied", "other": "it fails",
}


def _by_section(pairs, section):
    return [(host, facts[section]) for host, facts in pairs if isinstance(facts.get(section), dict)]


def _first(pairs, section):
    found = _by_section(pairs, section)
    return found[0] if found else (None, None)


def _users(app):
    return (app or {}).get("users") or {}


def _probe_failed(probe, kind):
    part = (probe or {}).get(kind)
    return bool(part) and not part.get("ok")


def impact(pairs, t):
    """{level, reason, app_answers, health_status, read, write, p95_s}: what users lose, and its P-level.

    P0: the app does not answer; or /health fails and the app's database user can neither read
    nor write for a reason that is not "busy". P1: every write fails; reads fail; /health is not 200.
    P3: p95 latency over ``t["response_time_s"]``. None: users lose nothing that was probed.
    """
    host, app = _first(pairs, "app")
    out = {"level": None, "reason": None, "host": host, "app_answers": None, "health_status": None,
           "read": None, "write": None, "p95_s": None}
    if app is None:
        return out
    health = app.get("health") or {}
    status = health.get("status")
    out["health_status"] = status
    out["app_answers"] = bool(status) if health else None
    db = _users(app).get("db") or {}
    read, write = db.get("read"), db.get("write")
    out["read"] = None if read is None else bool(read.get("ok"))
    out["write"] = None if write is None else bool(write.get("ok"))
    latency = _users(app).get("latency") or {}
    p95 = out["p95_s"] = latency.get("p95_s")
    read_reason = (read or {}).get("reason")
    write_reason = (write or {}).get("reason")
    read_down = read is not None and not read.get("ok") and read_reason not in TRANSIENT
    write_down = write is not None and not write.get("ok") and write_reason not in TRANSIENT
    if health and not status:
        out.update(level="P0", reason="the app does not answer (%s)" % (health.get("error") or "no HTTP answer"))
    elif status and status != 200 and read_down:
        out.update(level="P0", reason="/health answers %s and the app's database user cannot read or write: %s" % (
            status, REASON_WORDS.get(read_reason, read_reason)))
    elif write_down:
        out.update(level="P1", reason="every write fails as the app's database user: %s" % (
            REASON_WORDS.get(write_reason, write_reason)))
    elif read_down:
        out.update(level="P1", reason="reads fail as the app's database user: %s" % REASON_WORDS.get(
            read_reason, read_reason))
    elif status and status != 200:
        out.update(level="P1", reason="/health answers %s" % status)
    elif p95 is not None and p95 > t["response_time_s"]:
        out.update(level="P3", reason="p95 latency %.2f s over %s s" % (p95, t["response_time_s"]))
    return out


def _cause(cid, line, evidence, playbook=None, manual=None, host=None):
    fix = playbook or manual
    return {"id": cid, "line": "%s. Fix: %s." % (line.rstrip("."), fix.rstrip(".")) if fix else line,
            "summary": line, "evidence": evidence, "playbook": playbook, "manual": manual, "host": host}


def _log_hits(app, signature):
    summary = ((app or {}).get("error_log") or {}).get("summary") or {}
    return (summary.get("signatures") or {}).get(signature, 0)


def _log_message(app, signature):
    summary = ((app or {}).get("error_log") or {}).get("summary") or {}
    for m in summary.get("messages") or ():
        if signature in m.get("signatures", ()):
            return m
    return None


def _port_held(app_host, app):
    port = (app or {}).get("port") or {}
    proc = (app or {}).get("process") or {}
    own = proc.get("pid") or 0
    strangers = [h for h in port.get("holders") or () if h.get("pid") and h["pid"] != own]
    unstable = proc.get("status") != "online" or (proc.get("unstable_restarts") or 0) > 0
    if not strangers or not (unstable or _log_hits(app, "eaddrinuse")):
        return None
    h = strangers[0]
    hits = _log_hits(app, "eaddrinuse")
    line = ("Port %s on %s is held by pid %s (%s: %s), so %s cannot listen (PM2: %s, %s restarts%s)" % (
        port.get("port"), app_host, h["pid"], h.get("command"), h.get("cmdline") or "?", proc.get("name", "the app"),
        proc.get("status"), proc.get("restart_time"),
        ", EADDRINUSE x%s in its error log" % hits if hits else ""))
    manual = ("stop pid %s (%s) or move it off port %s, e.g. kill %s; then start the app "
              "(PM2 retries by itself unless it gave up: then %s)" % (
                  h["pid"], h.get("command"), port.get("port"), h["pid"], PLAYBOOK_RESTART_APP))
    return _cause("port_held", line, {"port": port.get("port"), "holders": strangers, "app_pid": own,
                                      "eaddrinuse_lines": hits}, manual=manual, host=app_host)


def _changed_keys(env_backup):
    names = []
    for c in env_backup.get("changed") or ():
        names.append("%s (%s differs)" % (c["key"], " and ".join(c["parts"]) + " part" if c.get("parts")
                                          else "value"))
    names += ["%s (missing, in the backup)" % k for k in env_backup.get("added") or ()]
    names += ["%s (new, not in the backup)" % k for k in env_backup.get("removed") or ()]
    return names


def _env_touches(env_backup, key):
    keys = {c["key"] for c in env_backup.get("changed") or ()} | set(env_backup.get("added") or ()) | set(
        env_backup.get("removed") or ())
    return key in keys


def _failing_dependencies(app):
    """[(kind, key, probe, reason)] of the app's own dependencies that fail from the app host."""
    users = _users(app)
    out = []
    db = users.get("db") or {}
    if _probe_failed(db, "read"):
        out.append(("database", db.get("key") or "DATABASE_URL", db, db["read"].get("reason")))
    elif _probe_failed(db, "write"):
        out.append(("database", db.get("key") or "DATABASE_URL", db, db["write"].get("reason")))
    redis = users.get("redis") or {}
    if redis and not redis.get("ok"):
        out.append(("redis", redis.get("key") or "REDIS_URL", redis, redis.get("reason")))
    return out


def _probe_error(kind, probe):
    if kind == "database":
        part = probe["read"] if _probe_failed(probe, "read") else probe.get("write") or {}
        return part.get("error") or ""
    return probe.get("error") or ""


def _config_changed(app_host, app):
    env_backup = _users(app).get("env_backup") or {}
    if not env_backup.get("differ"):
        return None
    related = [(kind, key, probe, reason) for kind, key, probe, reason in _failing_dependencies(app)
               if _env_touches(env_backup, key)]
    if not related:
        return None
    kind, key, probe, reason = related[0]
    line = ("The app's .env on %s changed since the file backup %s: %s (.env modified %s); with it the app's %s "
            "at %s: %s (%s)" % (
                app_host, env_backup.get("backup"), ", ".join(_changed_keys(env_backup)), env_backup.get("mtime"),
                kind, probe.get("target"), REASON_WORDS.get(reason, reason), _probe_error(kind, probe)[:160]))
    return _cause("config_changed", line, {"env_backup": env_backup, "failing": kind, "target": probe.get("target"),
                                           "reason": reason},
                  playbook=PLAYBOOK_RESTORE_FILES, host=app_host,
                  manual="restore .env from backup %s (%s), or %s if a release brought the change" % (
                      env_backup.get("backup"), PLAYBOOK_RESTORE_FILES, PLAYBOOK_ROLLBACK))


def _credentials(app_host, app, pairs):
    db = _users(app).get("db") or {}
    pg_host, pg = _first(pairs, "postgres")
    if _probe_failed(db, "read") and db["read"].get("reason") == "authentication" and (
            pg is None or pg.get("up") or pg.get("query_ok")):
        monitoring = ("the monitoring role connects" if pg and pg.get("query_ok") else
                      "pg_isready on %s answers %s" % (pg_host, pg.get("pg_isready")) if pg else "the server answers")
        line = ("The app's database user %s fails to authenticate at %s from %s while PostgreSQL is up and %s: "
                "%s" % (db.get("user"), db.get("target"), app_host, monitoring, db["read"].get("error", "")[:160]))
        manual = ("make the password in the app's %s and the role's agree: restore .env (%s) if a backup has the "
                  "right one, or ALTER ROLE %s PASSWORD as a superuser; then restart the app (%s)" % (
                      db.get("key") or "DATABASE_URL", PLAYBOOK_RESTORE_FILES, db.get("user"), PLAYBOOK_RESTART_APP))
        return _cause("credentials", line, {"db": db, "monitoring_connects": bool(pg and pg.get("query_ok"))},
                      manual=manual, host=app_host)
    redis = _users(app).get("redis") or {}
    cache_host, cache = _first(pairs, "redis")
    if (redis and not redis.get("ok") and redis.get("reason") == "authentication"
            and (cache is None or cache.get("ping"))):
        line = ("The app's Redis password is refused at %s from %s while Redis answers PING%s: %s" % (
            redis.get("target"), app_host, " with the inventory's password on %s" % cache_host if cache else "",
            redis.get("error", "")[:160]))
        manual = ("make the password in the app's %s and Redis' requirepass agree (restore .env with %s if a backup "
                  "has the right one); then restart the app (%s)" % (
                      redis.get("key") or "REDIS_URL", PLAYBOOK_RESTORE_FILES, PLAYBOOK_RESTART_APP))
        return _cause("credentials", line, {"redis": redis}, manual=manual, host=app_host)
    return None


def _refuses_writes(app_host, app, pairs, t):
    db = _users(app).get("db") or {}
    write = db.get("write") or {}
    pg_host, pg = _first(pairs, "postgres")
    pg = pg or {}
    reason = write.get("reason") if write and not write.get("ok") else None
    xid_age = pg.get("xid_age_max")
    if reason not in WRITE_REFUSALS and not pg.get("in_recovery") and not (
            xid_age is not None and xid_age > t["xid_age"]):
        return None
    where = pg_host or db.get("target")
    if pg.get("in_recovery") or reason == "in_recovery":
        what, manual, playbook = ("PostgreSQL on %s is in recovery (a standby, or a restore not finished)" % where,
                                  None, PLAYBOOK_RECOVER_DB)
    elif reason == "wraparound" or (xid_age is not None and xid_age > t["xid_age"]):
        what = "PostgreSQL on %s is near transaction ID wraparound (oldest datfrozenxid age %s)" % (where, xid_age)
        manual, playbook = "VACUUM (FREEZE) the oldest databases as a superuser (vacuumdb --all --freeze)", None
    elif reason == "disk_full":
        what = "PostgreSQL on %s cannot write: its disk is full" % where
        manual, playbook = "free space on the data/WAL filesystem of %s (see disk_full), then retry" % where, None
    else:
        source = pg.get("default_transaction_read_only_source")
        if pg.get("default_transaction_read_only") == "on" and source in ("configuration file", "command line"):
            scope = "server-wide (default_transaction_read_only = on, from the %s)" % source
        elif pg.get("default_transaction_read_only") == "on" and source == "database":
            scope = "for the database (ALTER DATABASE ... SET default_transaction_read_only = on)"
        else:
            scope = ("for the app's role %s (ALTER ROLE ... SET default_transaction_read_only = on; the "
                     "monitoring role's sessions are not read-only)" % db.get("user"))
        what = "PostgreSQL on %s runs the app's transactions read-only, %s" % (where, scope)
        manual = ("as a superuser: ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf(); "
                  "(or ALTER ROLE/DATABASE ... RESET default_transaction_read_only)")
        playbook = None
    line = "The database refuses writes: %s; the app's rolled-back write fails: %s" % (
        what, (write.get("error") or "not tried")[:160])
    return _cause("db_refuses_writes", line, {"write": write, "in_recovery": pg.get("in_recovery"),
                                              "default_transaction_read_only": pg.get("default_transaction_read_only"),
                                              "xid_age_max": xid_age}, playbook=playbook, manual=manual,
                  host=pg_host)


def _disk_full(pairs, t):
    for host, facts in _by_section(pairs, "host"):
        for disk in facts.get("disks") or ():
            if (disk.get("used_percent") or 0) > t["disk_percent"]:
                largest = disk.get("largest") or []
                growing = ", ".join("%s %.1f MB (written %ss ago)" % (e["path"], e["size_mb"], e.get("newest_age_s"))
                                    for e in largest[:3])
                line = "%s on %s is %s%% full (%s GB free)%s" % (
                    disk.get("path"), host, disk["used_percent"], disk.get("free_gb"),
                    "; largest: " + growing if growing else "")
                return _cause("disk_full", line, disk, host=host,
                              manual="free space on that filesystem: move or delete what grows (largest first), "
                                     "or grow the filesystem; then verify (healthbutler.recovery.diagnose)")
    return None


def _unreachable(app_host, app, pairs):
    for kind, key, probe, reason in _failing_dependencies(app):
        if reason not in CANNOT_REACH:
            continue
        error = _probe_error(kind, probe)
        if kind == "database":
            pg_host, pg = _first(pairs, "postgres")
            down = pg is not None and not pg.get("up")
            line = "From %s the app cannot reach its database at %s: %s (%s)%s" % (
                app_host, probe.get("target"), REASON_WORDS[reason], error[:160],
                "; PostgreSQL on %s does not answer pg_isready (%s)" % (pg_host, pg.get("pg_isready")) if down else "")
            if down:
                return _cause("dependency_unreachable", line, {"from": app_host, "to": probe.get("target"),
                                                               "reason": reason, "db_down": True},
                              playbook=PLAYBOOK_DB, host=app_host)
        else:
            cache_host, cache = _first(pairs, "redis")
            down = cache is not None and not cache.get("ping")
            line = "From %s the app cannot reach Redis at %s: %s (%s)%s" % (
                app_host, probe.get("target"), REASON_WORDS[reason], error[:160],
                "; Redis on %s does not answer PING either" % cache_host if down else "")
            if down:
                return _cause("dependency_unreachable", line, {"from": app_host, "to": probe.get("target"),
                                                               "reason": reason, "redis_down": True}, host=app_host,
                              manual="start Redis on %s (redis-server with its config), then check /health" % (
                                  cache_host))
        manual = ("fix %s in the app's %s or the name/route from %s to it (DNS, firewall, port)" % (
            probe.get("target"), key, app_host))
        return _cause("dependency_unreachable", line, {"from": app_host, "to": probe.get("target"), "reason": reason},
                      manual=manual, host=app_host)
    return None


def _failing_probe(app, kind):
    """(target, reason, error) of the app's ``kind`` probe ("database" or "redis") when it fails, else None."""
    for k, _key, probe, reason in _failing_dependencies(app):
        if k == kind:
            return probe.get("target"), reason, _probe_error(k, probe)
    return None


def _cut_from(pairs, kind, server_host):
    """[(app host, target, reason, error)]: app hosts other than ``server_host`` whose ``kind`` probe hits a cut."""
    out = []
    for app_host, app in _by_section(pairs, "app"):
        failed = _failing_probe(app, kind)
        if app_host != server_host and failed and failed[1] in NETWORK_CUT:
            out.append((app_host,) + failed)
    return out


def _app_hosts(names):
    """"app host a" or "app hosts a, b"."""
    names = list(names)
    return "app host%s %s" % ("s" if len(names) > 1 else "", ", ".join(names))


def _network_partition(pairs):
    """The app's database (or Redis) probe hits no route or a timeout from app host(s) while the server is up."""
    pg_host, pg = _first(pairs, "postgres")
    cut = _cut_from(pairs, "database", pg_host) if pg and (pg.get("up") or pg.get("query_ok")) else []
    if cut:
        up = "PostgreSQL on %s is up (pg_isready: %s%s)" % (
            pg_host, pg.get("pg_isready"), "; the monitoring role's query answers" if pg.get("query_ok") else "")
        return _partition_cause("database", cut, pg_host, up)
    cache_host, cache = _first(pairs, "redis")
    cut = _cut_from(pairs, "redis", cache_host) if cache and cache.get("ping") else []
    if cut:
        return _partition_cause("redis", cut, cache_host, "Redis on %s answers PING" % cache_host)
    return None


def _partition_cause(kind, cut, server_host, server_up):
    apps = _app_hosts(c[0] for c in cut)
    server = "%s host %s" % ("db" if kind == "database" else "cache", server_host)
    failures = "; ".join("from %s at %s: %s (%s)" % (h, to, REASON_WORDS[reason], " ".join(error.split())[:160])
                         for h, to, reason, error in cut)
    line = "The network between %s and %s is cut: the app's %s cannot be reached %s; %s" % (
        apps, server, "database" if kind == "database" else "Redis", failures, server_up)
    then = ("then %s verifies (and restarts an app that did not reconnect)" % PLAYBOOK_DB if kind == "database"
            else "then verify /health (healthbutler.recovery.diagnose)")
    manual = ("restore the route/firewall between %s and %s (ip route, iptables/nft, security group) to %s; the "
              "app reconnects by itself, no restart needed; %s" % (apps, server, cut[0][1], then))
    evidence = {"kind": kind, "from": [c[0] for c in cut], "to": cut[0][1], "server_host": server_host,
                "reasons": {c[0]: c[2] for c in cut}, "server_up": True}
    return _cause("network_partition", line, evidence, manual=manual, host=cut[0][0])


def _slow_reads(pairs, db_host, t):
    """[(app host, user, time_s)]: app hosts other than ``db_host`` whose database read took over db_round_trip_s."""
    out = []
    for app_host, app in _by_section(pairs, "app"):
        db = _users(app).get("db") or {}
        read = db.get("read") or {}
        if app_host != db_host and read.get("ok") and (read.get("time_s") or 0) > t["db_round_trip_s"]:
            out.append((app_host, db.get("user"), read["time_s"]))
    return out


def _network_latency(pairs, t, findings):
    """The app's read is slow from the app host(s) while the db host shows nothing slow of its own."""
    pg_host, pg = _first(pairs, "postgres")
    slow = _slow_reads(pairs, pg_host, t) if pg and pg.get("query_ok") else []
    ids = {f["id"] for f in findings or ()}
    if not slow or not ids & {"app_db_round_trip_slow", "app_slow_response"}:
        return None
    if any(f["id"] in DB_HOST_SLOW and f.get("host") in (pg_host, None) for f in findings):
        return None
    reads = ", ".join("%.2f s from %s" % (time_s, h) for h, _u, time_s in slow)
    apps = _app_hosts(r[0] for r in slow)
    line = ("The network between %s and db host %s is slow: a read as %s took %s (threshold %s s); on %s no "
            "statement ran long, no lock waits, CPU not busy" % (
                apps, pg_host, slow[0][1], reads, t["db_round_trip_s"], pg_host))
    manual = ("check the link between %s and db host %s, not the database: qdisc/netem (tc qdisc show), MTU "
              "(ping -M do -s 1472), congestion or packet loss (mtr)" % (apps, pg_host))
    evidence = {"from": [r[0] for r in slow], "db_host": pg_host, "read_s": {h: time_s for h, _u, time_s in slow},
                "threshold_s": t["db_round_trip_s"]}
    return _cause("network_latency", line, evidence, manual=manual, host=slow[0][0])


def causes(pairs, t, findings=None):
    """The likely causes, best first: [{id, line, summary, evidence, playbook, manual, host}].

    ``findings`` (classify's) let ``network_latency`` rule out a db host that is slow by itself.
    """
    out = []
    app_host, app = _first(pairs, "app")
    candidates = []
    if app is not None:
        candidates += [_port_held(app_host, app), _config_changed(app_host, app), _credentials(app_host, app, pairs)]
    candidates.append(_refuses_writes(app_host, app, pairs, t))
    candidates.append(_disk_full(pairs, t))
    partition = _network_partition(pairs)
    candidates.append(partition)
    if app is not None:
        unreachable = _unreachable(app_host, app, pairs)
        # The same failed probe, read as a partition: not also a generic "fix the URL or route".
        if not (partition and unreachable and unreachable["evidence"]["to"] == partition["evidence"]["to"]):
            candidates.append(unreachable)
    candidates.append(_network_latency(pairs, t, findings))
    for c in candidates:
        if c and c["id"] not in [o["id"] for o in out]:
            out.append(c)
    return out


def cause_unknown(pairs, findings):
    """The "cause unknown" line: the top finding and the error log's most frequent message, no guess."""
    _host, app = _first(pairs, "app")
    summary = ((app or {}).get("error_log") or {}).get("summary") or {}
    top = (summary.get("messages") or [None])[0]
    line = "cause unknown"
    if findings:
        line += ": %s (%s)" % (findings[0]["summary"], findings[0]["id"])
    if top:
        line += "; most frequent error-log line: %s (x%s)" % (top["message"][:160], top["count"])
    return {"id": "unknown", "line": line, "summary": line, "evidence": {"top_log_message": top},
            "playbook": None, "manual": None, "host": None}
