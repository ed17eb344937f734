# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Backups section of the diagnosis: newest backup, newest archived WAL segment, recovery window.

The backups come from the backup catalogue (``backup_catalog.scan``: dumps, base backups,
WAL bundles, file backups, legacy dumps), the same code the backup verification uses;
no checksum is recomputed here. The section's shape is unchanged: ``backup.newest`` and
``wal.newest`` with ``age_s``, plus ``catalog`` (per kind and the recovery window).
"""

from __future__ import annotations

import os
import re
import time

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_catalog

WAL_SEGMENT = re.compile(r"^[0-9A-F]{24}$")


def _newest(entries, now):
    if not entries:
        return None
    path, mtime, size = max(entries, key=lambda e: e[1])
    return {"path": path, "name": os.path.basename(path), "mtime": int(mtime), "age_s": int(now - mtime),
            "size": size}


def newest_backup(backup_dir, now=None):
    """The newest catalogued backup under ``backup_dir`` (by its end time), and how many there are."""
    now = now if now is not None else time.time()
    try:
        catalog = backup_catalog.scan(backup_dir, verify_checksums=False, include_segments=False, now=now)
    except OSError as exc:
        return {"dir": backup_dir, "exists": os.path.isdir(backup_dir), "files": 0, "newest": None,
                "error": str(exc)}
    entries = [(b["path"], backup_catalog.epoch(b["time"]), b.get("size") or 0) for b in catalog["backups"]]
    out = {"dir": backup_dir, "exists": catalog["exists"], "files": len(entries), "newest": _newest(entries, now)}
    if out["newest"]:
        out["newest"]["kind"] = next(b["kind"] for b in catalog["backups"] if b["path"] == out["newest"]["path"])
    return out


def newest_wal(wal_dir, now=None):
    """The newest archived WAL segment (24 hex digits) in ``wal_dir``."""
    now = now if now is not None else time.time()
    entries = []
    try:
        names = os.listdir(wal_dir)
    except OSError:
        return {"dir": wal_dir, "exists": False, "segments": 0, "newest": None}
    for name in names:
        if WAL_SEGMENT.match(name):
            st = os.stat(os.path.join(wal_dir, name))
            entries.append((os.path.join(wal_dir, name), st.st_mtime, st.st_size))
    return {"dir": wal_dir, "exists": True, "segments": len(entries), "newest": _newest(entries, now)}


def collect(backup_dir=None, wal_archive_dir=None, now=None):
    """The backups section: {ok, backup: {...}, wal: {...}}."""
    out = {"ok": True, "errors": []}
    if backup_dir:
        out["backup"] = newest_backup(backup_dir, now)
        if not out["backup"]["exists"]:
            out["errors"].append("backup dir %s does not exist" % backup_dir)
        elif out["backup"].get("error"):
            out["errors"].append("backup dir %s cannot be read: %s" % (backup_dir, out["backup"]["error"]))
    if wal_archive_dir:
        out["wal"] = newest_wal(wal_archive_dir, now)
        if not out["wal"]["exists"]:
            out["errors"].append("WAL archive %s does not exist" % wal_archive_dir)
    if backup_dir and out["backup"]["exists"] and not out["backup"].get("error"):
        try:
            out["catalog"] = backup_catalog.diagnose_section(backup_dir, wal_archive_dir,
                                                             now if now is not None else time.time())
        except (OSError, ValueError) as exc:
            out["errors"].append("backup catalogue of %s failed: %s" % (backup_dir, exc))
    out["ok"] = not out["errors"]
    return out
