# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Backups section of the diagnosis: age of the newest backup file and archived WAL segment.

Deliberately small: the backup-verification work replaces ``newest_backup`` with the
backup catalogue (``backup_catalog``) without changing this section's shape.
"""

from __future__ import annotations

import os
import re
import time

WAL_SEGMENT = re.compile(r"^[0-9A-F]{24}$")
# Work in progress and sidecars are not backups.
_NOT_BACKUP = re.compile(r"\.(partial|tmp|sha256|json|log)$|^\.")


def _newest(entries, now):
    if not entries:
        return None
    path, mtime, size = max(entries, key=lambda e: e[1])
    return {"path": path, "name": os.path.basename(path), "mtime": int(mtime), "age_s": int(now - mtime),
            "size": size}


def newest_backup(backup_dir, now=None):
    """The newest backup file under ``backup_dir`` (recursive), ignoring partials and sidecars."""
    now = now if now is not None else time.time()
    entries, count = [], 0
    for root, dirs, files in os.walk(backup_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if _NOT_BACKUP.search(name):
                continue
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            count += 1
            entries.append((path, st.st_mtime, st.st_size))
    return {"dir": backup_dir, "exists": os.path.isdir(backup_dir), "files": count,
            "newest": _newest(entries, now)}


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
    if wal_archive_dir:
        out["wal"] = newest_wal(wal_archive_dir, now)
        if not out["wal"]["exists"]:
            out["errors"].append("WAL archive %s does not exist" % wal_archive_dir)
    out["ok"] = not out["errors"]
    return out
