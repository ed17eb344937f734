# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Taking backups: full dump, plain base backup, 4-hourly WAL bundle, offsite copy.

Every writer creates a temporary name and renames it into place; nothing
existing is ever overwritten (``os.link`` refuses an existing target). Row
counts in a dump's metadata are taken inside the very snapshot ``pg_dump``
reads (``pg_export_snapshot`` + ``pg_dump --snapshot``), so they are exact.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from datetime import datetime, timezone

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_catalog as bc
from ansible_collections.healthbutler.recovery.plugins.module_utils import walnames
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import psql_argv, query_json
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError

COUNT_SQL = """
SELECT coalesce(jsonb_object_agg(n.nspname || '.' || c.relname,
         (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname),
                                              false, true, '')))[1]::text::bigint), '{}')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
"""


def utcnow():
    return datetime.now(timezone.utc)


def write_new(path, text):
    """Write ``text`` to a new file ``path`` via a temporary name; refuse to overwrite."""
    tmp = path + ".partial"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    publish(tmp, path)


def publish(tmp, path):
    """Rename ``tmp`` to ``path`` unless ``path`` exists (then raise, leaving both)."""
    if os.path.isdir(tmp):
        if os.path.exists(path):
            raise CommandError("refusing to overwrite existing backup %s" % path)
        os.rename(tmp, path)
        return
    os.link(tmp, path)  # FileExistsError when path exists: never overwrite
    os.unlink(tmp)


class SnapshotSession:
    """An open REPEATABLE READ transaction whose snapshot pg_dump shares.

    Uses ``subprocess`` directly because the session must stay open while
    ``pg_dump`` runs; psql flushes each result, so one line per query is read.
    """

    def __init__(self, conn):
        self.conn = conn
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(psql_argv(self.conn), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1,
                                     env=dict(os.environ, LANG="C", LC_ALL="C", **self.conn.env()))
        self.snapshot = self._query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"
                                    "SELECT pg_export_snapshot();")
        self.counts = json.loads(self._query(" ".join(COUNT_SQL.split()) + ";"))
        self.version = self._query("SHOW server_version;")
        return self

    def _query(self, sql):
        self.proc.stdin.write(sql + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise CommandError("psql snapshot session failed: %s" % self.proc.stderr.read().strip()[-1000:])
        return line.strip()

    def __exit__(self, *exc):
        try:
            self.proc.stdin.write("COMMIT;\n")
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(timeout=30)
        return False


def take_dump(runner, conn, backup_dir, now=None, session_factory=SnapshotSession, jobs=None):
    """``pg_dump -Fc`` of ``conn.dbname`` into ``dumps/`` with ``.sha256`` and ``.json`` sidecars."""
    start = now or utcnow()
    dumps = os.path.join(backup_dir, "dumps")
    os.makedirs(dumps, mode=0o750, exist_ok=True)
    name = "%s_%s.dump" % (conn.dbname, bc.stamp(start))
    final = os.path.join(dumps, name)
    if os.path.exists(final):
        raise CommandError("refusing to overwrite existing dump %s" % final)
    partial = final + ".partial"
    try:
        with session_factory(conn) as snap:
            argv = [conn.binary("pg_dump"), "-Fc", "--snapshot=%s" % snap.snapshot, "-f", partial]
            runner.check(argv + conn.conn_args(), env=conn.env(), what="pg_dump")
            counts, version = snap.counts, snap.version
        digest = bc.sha256_file(partial)
        size = os.path.getsize(partial)
        publish(partial, final)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    end = utcnow()
    write_new(final + ".sha256", "%s  %s\n" % (digest, name))
    meta = {"db": conn.dbname, "server_version": version, "start": bc.iso(start), "end": bc.iso(end),
            "size": size, "sha256": digest, "tables": counts}
    write_new(final + ".json", json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return {"kind": "dump", "name": name, "path": final, "meta": meta}


def wait_archived(wal_dir, segment, timeout=120, poll=1.0):
    """Wait until ``segment`` sits in the archive; return True when it does."""
    if not wal_dir:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(os.path.join(wal_dir, segment)):
            return True
        time.sleep(poll)
    return os.path.exists(os.path.join(wal_dir, segment))


def switch_wal(runner, conn, wal_dir=None, timeout=120):
    """``pg_switch_wal()``; wait until the segment it closed is archived. Returns (lsn, segment)."""
    row = query_json(runner, conn, "SELECT json_build_object('lsn', pg_switch_wal()::text)")
    lsn = walnames.parse_lsn(row["lsn"])
    tli = query_json(runner, conn, "SELECT to_json(substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))")
    segment = walnames.segment_of(max(lsn - 1, 0), int(tli, 16))
    if not wait_archived(wal_dir, segment, timeout):
        raise CommandError("segment %s was not archived into %s within %ss (check archive_command and "
                           "pg_stat_archiver)" % (segment, wal_dir, timeout))
    return row["lsn"], segment


def take_base(runner, conn, backup_dir, wal_dir=None, now=None, wal_method="none", archive_timeout=120):
    """Plain-format ``pg_basebackup`` with a SHA-256 manifest under ``base/<stamp>/`` + ``<stamp>.json``."""
    start = now or utcnow()
    base = os.path.join(backup_dir, "base")
    os.makedirs(base, mode=0o750, exist_ok=True)
    name = bc.stamp(start)
    final = os.path.join(base, name)
    if os.path.exists(final) or os.path.exists(final + ".json"):
        raise CommandError("refusing to overwrite existing base backup %s" % final)
    partial = final + ".partial"
    argv = [conn.binary("pg_basebackup"), "-D", partial, "-Fp", "-X", wal_method, "-c", "fast",
            "--manifest-checksums=SHA256", "-l", "healthbutler %s" % name, "--no-password"]
    argv += list(conn.conn_args(dbname=False))
    try:
        runner.check(argv, env=conn.env(), what="pg_basebackup", timeout=6 * 3600)
    except CommandError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    end = utcnow()
    with open(os.path.join(partial, "backup_label"), encoding="utf-8") as fh:
        label = bc.parse_backup_label(fh.read())
    with open(os.path.join(partial, "backup_manifest"), "rb") as fh:
        manifest = bc.parse_manifest(fh.read())
    stop_lsn = manifest["wal_ranges"][-1]["end_lsn"]
    stop_int = walnames.parse_lsn(stop_lsn)
    stop_wal = walnames.segment_of(stop_int - 1 if stop_int % walnames.WAL_SEG_SIZE == 0 else stop_int,
                                   label["timeline"])
    publish(partial, final)
    version = query_json(runner, conn, "SELECT to_json(current_setting('server_version'))")
    meta = {"start": bc.iso(start), "end": bc.iso(end), "start_lsn": label["start_lsn"], "stop_lsn": stop_lsn,
            "timeline": label["timeline"], "start_wal": label["start_wal"], "stop_wal": stop_wal,
            "server_version": version, "wal_method": wal_method}
    write_new(final + ".json", json.dumps(meta, indent=1, sort_keys=True) + "\n")
    # The stop segment must reach the archive for the backup to be restorable.
    switch_wal(runner, conn, wal_dir, archive_timeout)
    if not wait_archived(wal_dir, stop_wal, archive_timeout):
        raise CommandError("stop segment %s of base backup %s is not archived" % (stop_wal, name))
    return {"kind": "base", "name": name, "path": final, "meta": meta}


def segments_to_ship(wal_dir, backup_dir):
    """Archived segments (and history files) newer than the newest one already bundled."""
    catalog = bc.scan(backup_dir, wal_dir, verify_checksums=False)
    shipped = set()
    for entry in catalog["backups"]:
        if entry["kind"] == "incremental":
            shipped.update(entry.get("segments") or [])
    newest_shipped = max((walnames.segment_number(n) for n in shipped if walnames.is_segment(n)), default=-1)
    if newest_shipped < 0:
        # First bundle: nothing before the oldest base backup's start can be replayed.
        starts = [walnames.segment_number(b["start_wal"]) for b in catalog["backups"]
                  if b["kind"] == "base" and b.get("start_wal")]
        newest_shipped = min(starts, default=-1)
    names = [s["name"] for s in catalog["wal"]["segments"]
             if s["name"] not in shipped and walnames.segment_number(s["name"]) >= newest_shipped]
    history = sorted(n for n in os.listdir(wal_dir) if walnames.is_history(n) and n not in shipped)
    return names + history


def take_incremental(runner, conn, backup_dir, wal_dir, now=None, archive_timeout=120):
    """Switch WAL, bundle the segments archived since the previous bundle with a sha256 manifest."""
    switch_lsn, _segment = switch_wal(runner, conn, wal_dir, archive_timeout)
    start = now or utcnow()
    folder = os.path.join(backup_dir, "incremental")
    os.makedirs(folder, mode=0o750, exist_ok=True)
    name = bc.stamp(start)
    final = os.path.join(folder, name)
    if os.path.exists(final):
        raise CommandError("refusing to overwrite existing bundle %s" % final)
    names = segments_to_ship(wal_dir, backup_dir)
    partial = final + ".partial"
    os.makedirs(partial, mode=0o750)
    segments = {}
    try:
        for seg in names:
            shutil.copy2(os.path.join(wal_dir, seg), os.path.join(partial, seg))
            segments[seg] = bc.sha256_file(os.path.join(partial, seg))
        with open(os.path.join(partial, "manifest.json"), "w", encoding="utf-8") as fh:
            json.dump({"segments": segments, "switch_lsn": switch_lsn, "time": bc.iso(utcnow())}, fh,
                      indent=1, sort_keys=True)
        publish(partial, final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return {"kind": "incremental", "name": name, "path": final, "segments": sorted(segments)}


# -- offsite ----------------------------------------------------------------------
RSYNC_BASE = ["-rlt", "--protect-args"]


def rsync_argv(rsync="rsync", rsh=None, protect_args=True):
    """rsync with the collection's base options; ``rsh`` is the remote shell for ``host:path`` (its --rsh).

    ``protect_args=False`` for a server behind ``rrsync``, which refuses ``--protect-args``.
    """
    base = RSYNC_BASE if protect_args else [o for o in RSYNC_BASE if o != "--protect-args"]
    return [rsync] + base + (["--rsh=" + rsh] if rsh else [])


def offsite_differences(runner, source, dest, rel_paths=None, rsync="rsync", rsh=None, protect_args=True):
    """Files under ``source`` missing at ``dest`` or with a different checksum (rsync -c dry run).

    ``dest`` may be a local path or ``host:path`` (reached through ``rsh``, default ssh).
    Returns ``[{"path", "state"}]`` with state ``missing`` or ``mismatch``.
    """
    argv = rsync_argv(rsync, rsh, protect_args) + ["--checksum", "--dry-run", "--itemize-changes"]
    data = None
    if rel_paths is not None:
        argv += ["--files-from=-"]
        data = "".join(p + "\n" for p in rel_paths)
    argv += [source.rstrip("/") + "/", dest.rstrip("/") + "/"]
    res = runner.check(argv, data=data, what="rsync --checksum --dry-run")
    out = []
    for line in res.stdout.splitlines():
        if len(line) < 12 or line[1] != "f" or line[0] not in "<>ch.":
            continue
        flags, path = line[:11], line[12:]
        if "+++++++++" in flags:
            out.append({"path": path, "state": "missing"})
        elif flags[2] == "c":
            out.append({"path": path, "state": "mismatch"})
    return out


def copy_offsite(runner, source, dest, subdirs=("dumps", "base", "incremental", "files"), rsync="rsync", rsh=None):
    """rsync the backup tree to ``dest`` without overwriting anything there, then verify by checksum."""
    present = [d for d in subdirs if os.path.isdir(os.path.join(source, d))]
    if not present:
        return {"copied": [], "differences": []}
    if ":" not in dest.split("/")[0]:
        os.makedirs(dest, exist_ok=True)
    argv = rsync_argv(rsync, rsh) + ["--ignore-existing", "--itemize-changes", "--exclude=*.partial",
                                     "--relative"] + ["./" + d for d in present] + [dest.rstrip("/") + "/"]
    res = runner.check(argv, cwd=source, what="rsync to offsite")
    copied = [line[12:] for line in res.stdout.splitlines() if len(line) > 12 and line[1] == "f"]
    # Verify what this run sent; the nightly verification compares everything inside the window.
    diffs = offsite_differences(runner, source, dest, sorted(copied), rsync, rsh) if copied else []
    return {"copied": copied, "differences": diffs}
