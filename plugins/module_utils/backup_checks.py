# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Integrity checks of a backup catalogue; each yields a named verdict with evidence.

A check is ``{"name", "status": OK|WARNING|FAILED, "evidence": str}``. Checks
that run commands take a ``CommandRunner``; scratch clusters (test restore, PITR
replay) live under a scratch directory and are always removed.
"""

from __future__ import annotations

import os
import re
import shutil
import time

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_catalog as bc
from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_policy, files_sync, walnames
from ansible_collections.healthbutler.recovery.plugins.module_utils.backup_create import COUNT_SQL
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import Conn, execute, query_json
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError

OK, WARNING, FAILED = "OK", "WARNING", "FAILED"
STATUS_VALUE = {OK: 0, WARNING: 1, FAILED: 2}


def check(name, status, evidence, **details):
    return dict({"name": name, "status": status, "evidence": evidence}, **details)


def tail(text, n=600):
    return (text or "").strip()[-n:]


# -- dumps and base backups ---------------------------------------------------------
def dump_check(runner, entry, pg_restore="pg_restore"):
    """Sidecar checksum, then a full read (``pg_restore -f /dev/null``); --list alone misses damage."""
    name = "dump_integrity[%s]" % entry["name"]
    if entry.get("size", 0) == 0:
        return check(name, FAILED, "dump file is empty (0 bytes)")
    state = entry["checksum"]["state"]
    if state == "mismatch":
        return check(name, FAILED, "sha256 %s does not match the sidecar %s" % (
            entry["checksum"].get("sha256"), entry["checksum"].get("expected")))
    res = runner.run([pg_restore, "-f", "/dev/null", entry["path"]], timeout=6 * 3600)
    if res.rc != 0:
        return check(name, FAILED, "full read failed (pg_restore rc=%s): %s" % (res.rc, tail(res.stderr)))
    if state == "missing":
        return check(name, WARNING, "full read OK, but no .sha256 sidecar to compare")
    if state == "unchecked":
        return check(name, WARNING, "full read OK, sidecar not compared")
    return check(name, OK, "sha256 matches the sidecar; full read OK (%d bytes)" % entry["size"])


def base_check(runner, entry, wal_dir=None, pg_verifybackup="pg_verifybackup"):
    """``pg_verifybackup`` of a plain base backup, WAL checked against the archive."""
    name = "base_backup[%s]" % entry["name"]
    if not entry.get("has_manifest"):
        return check(name, FAILED, "backup_manifest is missing or unreadable: the backup cannot be verified")
    argv = [pg_verifybackup]
    argv += ["-w", wal_dir] if wal_dir else ["-n"]
    res = runner.run(argv + [entry["path"]], timeout=6 * 3600)
    if res.rc != 0:
        return check(name, FAILED, "pg_verifybackup rc=%s: %s" % (res.rc, tail(res.stderr or res.stdout)))
    return check(name, OK, "pg_verifybackup: %s" % tail(res.stdout, 200))


# -- WAL ------------------------------------------------------------------------------------
def wal_continuity_check(catalog, wal_seg_size=walnames.WAL_SEG_SIZE):
    """Every segment from the oldest base backup's start to the newest archived one, across timelines."""
    wal = catalog.get("wal") or {}
    available = {s["name"] for s in wal.get("segments") or []}
    bases = [b for b in catalog.get("backups", []) if b["kind"] == "base" and b.get("start_wal")]
    if not bases:
        return check("wal_continuity", FAILED, "no base backup to replay WAL from")
    if not available:
        return check("wal_continuity", FAILED, "the WAL archive %s holds no segment" % wal.get("dir"))
    oldest = min(bases, key=lambda b: walnames.parse_lsn(b["start_lsn"]) if b.get("start_lsn") else 0)
    history = {int(k): v for k, v in (wal.get("history") or {}).items()}
    target = max({walnames.timeline_of(n) for n in available} | set(history))
    path = walnames.timeline_path(target, history)
    last_segno = max(walnames.segment_number(n, wal_seg_size) for n in available)
    last, missing = walnames.contiguous_from(oldest["start_wal"], available, path, last_segno, wal_seg_size)
    span = "from %s (start of base backup %s) to %s along timelines %s" % (
        oldest["start_wal"], oldest["name"], walnames.expected_segment(last_segno, path, wal_seg_size),
        [t for t, _unused in path])
    if missing:
        return check("wal_continuity", FAILED, "first missing segment %s; contiguous %s only up to %s" % (
            missing, span, last), first_missing=missing)
    count = last_segno - walnames.segment_number(oldest["start_wal"], wal_seg_size) + 1
    return check("wal_continuity", OK, "%d segments contiguous %s" % (count, span))


def archiving_check(runner, conn, wal_dir):
    """archive_mode on, the command archives into ``wal_dir`` without overwriting, no recent failure."""
    row = query_json(runner, conn, """
        SELECT json_build_object('mode', current_setting('archive_mode'),
          'command', current_setting('archive_command'),
          'failed', failed_count, 'last_failed', last_failed_time, 'last_archived', last_archived_time,
          'last_failed_wal', last_failed_wal, 'last_archived_wal', last_archived_wal)
          FROM pg_stat_archiver""")
    return judge_archiving(row, wal_dir)


def judge_archiving(row, wal_dir):
    if row["mode"] not in ("on", "always"):
        return check("wal_archiving", FAILED, "archive_mode is %s" % row["mode"])
    command = row.get("command") or ""
    if wal_dir and wal_dir not in command and "%p" not in command:
        return check("wal_archiving", FAILED, "archive_command does not archive anything: %r" % command)
    failed_after = row.get("last_failed") and (not row.get("last_archived") or
                                               bc.epoch(row["last_failed"]) > bc.epoch(row["last_archived"]))
    if failed_after:
        return check("wal_archiving", FAILED, "archiving is failing: last failure %s on %s after last success %s"
                     % (row["last_failed"], row.get("last_failed_wal"), row.get("last_archived")))
    if not re.search(r"test\s+!\s+-f|\[\s+!\s+-f|--no-clobber|-n\s", command):
        return check("wal_archiving", WARNING, "archive_command has no visible never-overwrite guard: %r" % command)
    return check("wal_archiving", OK, "archive_mode=%s, last archived %s at %s" % (
        row["mode"], row.get("last_archived_wal"), row.get("last_archived")))


# -- offsite, policy, window ------------------------------------------------------------
def offsite_rel_paths(catalog, window_start_ts):
    """Relative paths of every file of the local backups inside the window."""
    location = catalog["location"]
    rel = []
    for entry in catalog.get("backups", []):
        if entry["kind"] not in ("dump", "base", "incremental") or bc.epoch(entry["time"]) < window_start_ts:
            continue
        if entry["kind"] == "dump":
            rel += [os.path.relpath(p, location) for p in (entry["path"], entry["path"] + ".sha256",
                                                           entry["path"] + ".json") if os.path.exists(p)]
            continue
        for root, _dirs, files in os.walk(entry["path"]):
            rel += [os.path.relpath(os.path.join(root, f), location) for f in files]
        if os.path.exists(entry["path"] + ".json"):
            rel.append(os.path.relpath(entry["path"] + ".json", location))
    return sorted(rel)


def offsite_check(runner, catalog, offsite, window_start_ts, rsync="rsync", rsh=None):
    from ansible_collections.healthbutler.recovery.plugins.module_utils.backup_create import offsite_differences
    if not offsite:
        return check("offsite_copy", FAILED, "no offsite location configured")
    rel = offsite_rel_paths(catalog, window_start_ts)
    if not rel:
        return check("offsite_copy", WARNING, "no local backup inside the window to compare")
    try:
        diffs = offsite_differences(runner, catalog["location"], offsite, rel, rsync, rsh)
    except CommandError as exc:
        return check("offsite_copy", FAILED, "cannot compare with %s: %s" % (offsite, tail(exc.stderr or exc.msg)))
    if diffs:
        return check("offsite_copy", FAILED, "%d file(s) differ offsite: %s" % (len(diffs), ", ".join(
            "%s (%s)" % (d["path"], d["state"]) for d in diffs[:10])), differences=diffs)
    return check("offsite_copy", OK, "%d files inside the window present offsite with matching checksums"
                 % len(rel))


POLICY_CHECKS = [
    ("policy_full_backup_age", ("full_missing", "full_stale")),
    ("policy_incremental_interval", ("incremental_missing", "incremental_gap")),
    ("policy_retention", ("retention_short", "retention_excess")),
    ("policy_offsite", ("offsite_missing", "offsite_stale")),
]


def policy_checks(found):
    """One check per policy area from ``backup_policy.violations`` output."""
    out = []
    for name, kinds in POLICY_CHECKS:
        mine = [v for v in found if v["kind"] in kinds]
        if not mine:
            out.append(check(name, OK, "no violation"))
            continue
        status = FAILED if any(v["severity"] == "failed" for v in mine) else WARNING
        out.append(check(name, status, "; ".join(v["message"] for v in mine), violations=mine))
    return out


def window_check(window, now_ts, max_age_seconds):
    if not window["recoverable"]:
        return check("recovery_window", FAILED, "not recoverable: %s" % window["reason"])
    latest = window["latest"]
    age = now_ts - (bc.epoch(latest["time"]) or 0)
    evidence = "recoverable from %s (%s) to %s (segment %s, %.0f s ago)" % (
        window["earliest"]["time"], window["earliest"]["backup"], latest["time"], latest["segment"], age)
    if latest.get("first_missing"):
        return check("recovery_window", WARNING, evidence + "; WAL stops before %s" % latest["first_missing"])
    if age > max_age_seconds:
        return check("recovery_window", WARNING, evidence + "; older than %d s" % max_age_seconds)
    return check("recovery_window", OK, evidence)


# -- scratch clusters ----------------------------------------------------------------------
class ScratchCluster:
    """A throw-away PostgreSQL instance on its own port and socket under ``root``."""

    def __init__(self, runner, bindir, root, port, name):
        self.runner, self.bindir, self.port = runner, bindir, int(port)
        self.dir = os.path.join(root, name)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.started = False

    def bin(self, name):
        return os.path.join(self.bindir, name) if self.bindir else name

    def conn(self, dbname="postgres"):
        return Conn(host=self.dir, port=self.port, dbname=dbname, bindir=self.bindir)

    def settings(self):
        return {"port": str(self.port), "listen_addresses": "''", "unix_socket_directories": "'%s'" % self.dir,
                "logging_collector": "off", "archive_mode": "off", "log_min_duration_statement": "-1",
                "shared_buffers": "'32MB'"}

    def write_settings(self, extra=None):
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a", encoding="utf-8") as fh:
            fh.write("\n# healthbutler.recovery scratch instance\n")
            for key, value in dict(self.settings(), **(extra or {})).items():
                fh.write("%s = %s\n" % (key, value))

    def initdb(self):
        os.makedirs(self.dir, mode=0o700)
        self.runner.check([self.bin("initdb"), "-D", self.data, "-A", "peer", "--no-sync", "-E", "UTF8",
                           "--locale=C.UTF-8"], what="initdb (scratch)")
        self.write_settings()

    def start(self, timeout=600):
        self.runner.check([self.bin("pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", str(timeout), "start"],
                          what="pg_ctl start (scratch)", timeout=timeout + 30)
        self.started = True

    def read_log(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def destroy(self):
        if self.started or os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self.runner.run([self.bin("pg_ctl"), "-D", self.data, "-w", "-t", "60", "-m", "immediate", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)


def restore_check(runner, entry, bindir, scratch_root, port, recent_rows=10):
    """Restore ``entry`` (a dump) into a scratch cluster, run the runbook's 数据验证 queries, compare counts."""
    name = "test_restore[%s]" % entry["name"]
    cluster = ScratchCluster(runner, bindir, scratch_root, port, "restore-%d" % os.getpid())
    try:
        cluster.initdb()
        cluster.start()
        execute(runner, cluster.conn(), "CREATE DATABASE hb_verify_restore")
        res = runner.run([cluster.bin("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                          "-d", "hb_verify_restore"] + cluster.conn("hb_verify_restore").conn_args(dbname=False)
                         + [entry["path"]], timeout=6 * 3600)
        if res.rc != 0:
            return check(name, FAILED, "pg_restore into a scratch database failed: %s" % tail(res.stderr))
        db = cluster.conn("hb_verify_restore")
        counts = query_json(runner, db, COUNT_SQL)
        queries = query_json(runner, db, """
            SELECT jsonb_build_object(
              'users', (SELECT count(*) FROM users),
              'recent_health_data', (SELECT coalesce(json_agg(r), '[]') FROM (
                 SELECT id, user_id, metric, created_at FROM health_data ORDER BY created_at DESC LIMIT %d) r),
              'table_sizes', (SELECT json_object_agg(table_name,
                 pg_size_pretty(pg_total_relation_size(quote_ident(table_name))))
                 FROM information_schema.tables WHERE table_schema = 'public'))""" % int(recent_rows))
    except CommandError as exc:
        return check(name, FAILED, "scratch restore failed: %s" % tail(exc.stderr or exc.msg))
    finally:
        cluster.destroy()
    expected = (entry.get("meta") or {}).get("tables")
    details = {"row_counts": counts, "queries": queries}
    if not expected:
        return check(name, WARNING, "restored; no row counts in the dump metadata to compare (%d users)"
                     % queries["users"], **details)
    differ = {t: {"metadata": expected.get(t), "restored": counts.get(t)}
              for t in sorted(set(expected) | set(counts)) if expected.get(t) != counts.get(t)}
    if differ:
        return check(name, FAILED, "row counts differ from the dump metadata: %s" % differ, **details)
    return check(name, OK, "restored into a scratch database; row counts of %d tables match the metadata "
                 "(%d users, newest health_data %s)" % (len(counts), queries["users"],
                                                        (queries["recent_health_data"] or [{}])[0].get("created_at")),
                 **details)


REDO_DONE = re.compile(r"redo done at (\S+).*?(?:last completed transaction was at log time ([^\n]+))?$", re.M)
RESTORED = re.compile(r'restored log file "([0-9A-F]{24})" from archive')


def pitr_check(runner, entry, window, wal_dir, bindir, scratch_root, port, amcheck=False, timeout=900):
    """Recover a copy of base backup ``entry`` on a scratch port, replaying the archive to its end."""
    name = "pitr_replay[%s]" % entry["name"]
    cluster = ScratchCluster(runner, bindir, scratch_root, port, "pitr-%d" % os.getpid())
    try:
        os.makedirs(cluster.dir, mode=0o700)
        shutil.copytree(entry["path"], cluster.data, symlinks=True)
        os.chmod(cluster.data, 0o700)
        for conf, text in (("postgresql.conf", ""), ("pg_hba.conf", "local all all peer\n"),
                           ("pg_ident.conf", "")):
            if not os.path.exists(os.path.join(cluster.data, conf)):
                with open(os.path.join(cluster.data, conf), "w", encoding="utf-8") as fh:
                    fh.write(text)
        os.makedirs(os.path.join(cluster.data, "pg_wal"), exist_ok=True)
        cluster.write_settings({"restore_command": "'cp \"%s/%%f\" \"%%p\"'" % wal_dir,
                                "recovery_target_timeline": "'latest'", "hot_standby": "on",
                                "log_directory": "'%s'" % cluster.dir})
        open(os.path.join(cluster.data, "recovery.signal"), "w", encoding="utf-8").close()
        cluster.start(timeout)
        deadline = time.monotonic() + timeout
        while query_json(runner, cluster.conn(), "SELECT to_json(pg_is_in_recovery())"):
            if time.monotonic() > deadline:
                return check(name, FAILED, "recovery did not finish within %s s" % timeout)
            time.sleep(1)
        log = cluster.read_log()
        amcheck_result = None
        if amcheck:
            res = runner.run([cluster.bin("pg_amcheck"), "--install-missing", "--all"]
                             + cluster.conn().conn_args(dbname=False), timeout=timeout)
            amcheck_result = {"rc": res.rc, "output": tail(res.stdout + res.stderr)}
    except (CommandError, OSError) as exc:
        log = cluster.read_log()
        return check(name, FAILED, "scratch recovery failed: %s; log: %s" % (
            tail(getattr(exc, "stderr", "") or str(exc), 300), tail(log, 600)))
    finally:
        cluster.destroy()
    restored = RESTORED.findall(log)
    done = REDO_DONE.search(log)
    last_seg = restored[-1] if restored else None
    until = done.group(2).strip() if done and done.group(2) else None
    want = (window.get("latest") or {}).get("segment")
    details = {"replayed_through": last_seg, "redo_done_lsn": done.group(1) if done else None,
               "restorable_until": until or (window.get("latest") or {}).get("time"), "amcheck": amcheck_result}
    if amcheck_result and amcheck_result["rc"] != 0:
        return check(name, FAILED, "pg_amcheck found corruption: %s" % amcheck_result["output"], **details)
    if want and last_seg != want:
        return check(name, FAILED, "replay stopped at %s, the archive's contiguous end is %s" % (last_seg, want),
                     **details)
    return check(name, OK, "recovered on port %s, replayed through %s; restorable up to %s" % (
        port, last_seg, details["restorable_until"]), **details)


def summarise(checks):
    counts = {OK: 0, WARNING: 0, FAILED: 0}
    for item in checks:
        counts[item["status"]] += 1
    status = FAILED if counts[FAILED] else WARNING if counts[WARNING] else OK
    return {"status": status, "counts": counts, "failed": [c["name"] for c in checks if c["status"] == FAILED]}


def run_all(runner, options, now_ts=None):
    """Catalogue, integrity, policy and window checks (plus scratch restores when asked).

    ``options``: backup_dir, wal_dir, offsite, offsite_rsh, policy, legacy_pattern, pg_bindir, scratch_dir,
    scratch_port,
    conn (live server, optional), test_restore, pitr, amcheck, max_window_age, scope (all|window|newest).
    Returns the report dict.
    """
    now_ts = time.time() if now_ts is None else now_ts
    now_iso = bc.iso(now_ts)
    policy = backup_policy.policy_with_defaults(options.get("policy"))
    bindir = options.get("pg_bindir")

    def binary(name):
        return os.path.join(bindir, name) if bindir else name

    catalog = bc.scan(options["backup_dir"], options.get("wal_dir"),
                      legacy_pattern=options.get("legacy_pattern") or bc.LEGACY_DUMP_PATTERN, now=now_ts)
    offsite = options.get("offsite")
    offsite_catalog = None
    if offsite and ":" not in offsite.split("/")[0] and os.path.isdir(offsite):
        offsite_catalog = bc.scan(offsite, verify_checksums=False, now=now_ts)
    checks = []
    count = len(catalog["backups"])
    missing = [what % path for what, path, there in (
        ("backup directory %s does not exist", catalog["location"], catalog.get("exists", True)),
        ("WAL archive directory %s does not exist", catalog["wal"]["dir"], catalog["wal"].get("exists", True)))
        if path and not there]
    evidence = "%d backups in %s, %d WAL segments in %s" % (
        count, catalog["location"], catalog["wal"]["count"], catalog["wal"]["dir"])
    checks.append(check("catalog", OK if count and not missing else FAILED,
                        "; ".join(missing + [evidence]) if missing else evidence))
    window_start_ts = now_ts - policy["retention_days"] * 86400
    scope = options.get("scope") or "all"
    for kind, fn in (("dump", lambda e: dump_check(runner, e, binary("pg_restore"))),
                     ("base", lambda e: base_check(runner, e, options.get("wal_dir"), binary("pg_verifybackup")))):
        entries = [e for e in catalog["backups"] if e["kind"] == kind]
        if scope == "window":
            entries = [e for e in entries if bc.epoch(e["time"]) >= window_start_ts]
        elif scope == "newest":
            entries = entries[-1:]
        checks += [fn(e) for e in entries]
    checks.append(wal_continuity_check(catalog))
    if options.get("conn") is not None:
        try:
            checks.append(archiving_check(runner, options["conn"], options.get("wal_dir")))
        except CommandError as exc:
            checks.append(check("wal_archiving", WARNING, "live server not reachable: %s" % tail(exc.msg, 300)))
    if offsite:
        checks.append(offsite_check(runner, catalog, offsite, window_start_ts, options.get("rsync") or "rsync",
                                    options.get("offsite_rsh")))
        if offsite_catalog is None:
            # host:path: what is offsite is what rsync found present (and equal).
            bad = {d["path"] for d in checks[-1].get("differences", [])}
            location = catalog["location"]
            offsite_catalog = {"exists": checks[-1]["status"] != FAILED or bool(bad), "backups": [
                b for b in catalog["backups"]
                if not any(p == os.path.relpath(b["path"], location) or p.startswith(
                    os.path.relpath(b["path"], location) + "/") for p in bad)]}
    found = backup_policy.violations(catalog, policy, now_iso, offsite_catalog if offsite else None)
    if not offsite:
        found = [v for v in found if not v["kind"].startswith("offsite")]
    checks += policy_checks(found)
    window = bc.recovery_window(catalog)
    checks.append(window_check(window, now_ts, options.get("max_window_age") or 3600))
    scratch = options.get("scratch_dir")
    if options.get("test_restore") and scratch:
        newest_dump = bc.newest({"backups": [e for e in catalog["backups"] if e["kind"] == "dump"
                                             and e["checksum"]["state"] != "mismatch" and e.get("size")]}, "dump")
        if newest_dump is None:
            checks.append(check("test_restore", FAILED, "no intact dump to restore"))
        else:
            checks.append(restore_check(runner, newest_dump, bindir, scratch, options["scratch_port"]))
    if options.get("pitr") and scratch and options.get("wal_dir"):
        usable = [b for b in window["base_backups"] if b["usable"]]
        if not usable:
            checks.append(check("pitr_replay", FAILED, "no usable base backup: %s" % window["reason"]))
        else:
            entry = next(e for e in catalog["backups"] if e["kind"] == "base" and e["name"] == usable[-1]["name"])
            checks.append(pitr_check(runner, entry, window, options["wal_dir"], bindir, scratch,
                                     options["scratch_port"], options.get("amcheck", False)))
    # File backups (uploads + .env, taken with every full run): newest present, complete, fresh, env 0600.
    max_files_age = (policy["full_interval_hours"] + policy["grace_hours"]) * 3600
    checks.append(check("files_backup", *files_sync.judge_file_backup(bc.newest(catalog, "files"), now_ts,
                                                                      max_files_age)))
    newest = {}
    for kind in ("dump", "base", "incremental", "files"):
        entry = bc.newest(catalog, kind)
        if entry:
            newest[kind] = {"name": entry["name"], "time": entry["time"],
                            "age_seconds": round(now_ts - bc.epoch(entry["time"]), 1)}
    slim = dict(catalog, wal=dict(catalog["wal"], segments=[]))
    return {"generated_at": now_iso, "generated_at_ts": now_ts, "summary": summarise(checks), "checks": checks,
            "window": window, "violations": found, "newest": newest, "policy": policy,
            "catalog": slim}
