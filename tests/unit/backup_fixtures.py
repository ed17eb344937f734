"""Builders of synthetic backup trees for the backup unit tests (no PostgreSQL needed)."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timedelta, timezone

from ansible_collections.healthbutler.recovery.plugins.module_utils import walnames

T0 = datetime(2026, 11, 28, 3, 0, 0, tzinfo=timezone.utc)
SEG = walnames.WAL_SEG_SIZE


def stamp(ts):
    return ts.strftime("%Y%m%dT%H%M%SZ")


def iso(ts):
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def touch(path, ts, data=b"x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    os.utime(path, (ts.timestamp(), ts.timestamp()))


def make_manifest(start_lsn, end_lsn, timeline=1, files=()):
    body = ('{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n%s],\n'
            '"WAL-Ranges": [\n{ "Timeline": %d, "Start-LSN": "%s", "End-LSN": "%s" }\n],\n'
            % (",\n".join('{ "Path": "%s", "Size": 1 }' % f for f in files), timeline, start_lsn, end_lsn))
    raw = body.encode()
    return raw + ('"Manifest-Checksum": "%s"}\n' % hashlib.sha256(raw).hexdigest()).encode()


def make_dump(root, ts, db="health_butler", data=b"PGDMP-fake-dump", sidecar=True, meta=True):
    name = "%s_%s.dump" % (db, stamp(ts))
    path = os.path.join(root, "dumps", name)
    touch(path, ts, data)
    if sidecar:
        touch(path + ".sha256", ts, ("%s  %s\n" % (hashlib.sha256(data).hexdigest(), name)).encode())
    if meta:
        touch(path + ".json", ts, json.dumps({"db": db, "start": iso(ts - timedelta(seconds=5)), "end": iso(ts),
                                              "size": len(data), "tables": {"public.users": 3}}).encode())
    return path


def make_base(root, ts, start_segno, stop_segno=None, timeline=1, manifest=True, meta=True):
    """A fake plain base backup whose WAL starts at segment ``start_segno``."""
    stop_segno = start_segno if stop_segno is None else stop_segno
    name = stamp(ts)
    path = os.path.join(root, "base", name)
    start_lsn = walnames.format_lsn(start_segno * SEG + 0x28)
    stop_lsn = walnames.format_lsn(stop_segno * SEG + 0x100)
    start_wal = walnames.segment_name(timeline, start_segno)
    touch(os.path.join(path, "PG_VERSION"), ts, b"15\n")
    touch(os.path.join(path, "backup_label"), ts, (
        "START WAL LOCATION: %s (file %s)\nCHECKPOINT LOCATION: %s\nBACKUP METHOD: streamed\n"
        "BACKUP FROM: primary\nSTART TIME: %s UTC\nLABEL: test\nSTART TIMELINE: %d\n"
        % (start_lsn, start_wal, start_lsn, (ts - timedelta(seconds=2)).strftime("%Y-%m-%d %H:%M:%S"),
           timeline)).encode())
    if manifest:
        touch(os.path.join(path, "backup_manifest"), ts, make_manifest(start_lsn, stop_lsn, timeline, ["PG_VERSION"]))
    if meta:
        touch(path + ".json", ts, json.dumps({
            "start": iso(ts - timedelta(seconds=2)), "end": iso(ts), "start_lsn": start_lsn, "stop_lsn": stop_lsn,
            "timeline": timeline, "start_wal": start_wal,
            "stop_wal": walnames.segment_name(timeline, stop_segno), "server_version": "15.18"}).encode())
    return path


def make_wal(wal_dir, timeline, segnos, t_first, step=timedelta(minutes=10)):
    """Archive segments ``segnos`` on ``timeline``; mtimes rise by ``step``."""
    for index, segno in enumerate(segnos):
        touch(os.path.join(wal_dir, walnames.segment_name(timeline, segno)), t_first + index * step)


def make_history(wal_dir, timeline, entries, ts=T0):
    text = "".join("%d\t%s\t%s\n" % (tli, lsn, reason) for tli, lsn, reason in entries)
    touch(os.path.join(wal_dir, "%08X.history" % timeline), ts, text.encode())


def make_incremental(root, ts, wal_dir, names):
    path = os.path.join(root, "incremental", stamp(ts))
    os.makedirs(path, exist_ok=True)
    segments = {}
    for name in names:
        with open(os.path.join(wal_dir, name), "rb") as fh:
            data = fh.read()
        touch(os.path.join(path, name), ts, data)
        segments[name] = hashlib.sha256(data).hexdigest()
    touch(os.path.join(path, "manifest.json"), ts,
          json.dumps({"segments": segments, "switch_lsn": "0/0", "time": iso(ts)}).encode())
    return path
