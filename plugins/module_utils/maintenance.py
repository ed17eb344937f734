# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""The maintenance flag: a file whose presence takes the app out of service.

The sandbox app answers 503 + ``Retry-After`` while it exists; in production
nginx does the same (``if (-f /app/maintenance.flag) { return 503; }``, see
docs/maintenance.md). The file holds a small JSON record of who set it and why.
"""

from __future__ import annotations

import json
import os
import tempfile
import time


def read_flag(path):
    """None when the flag is absent, else its record ({} when it is not our JSON)."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
        return record if isinstance(record, dict) else {}
    except (OSError, ValueError):
        return {}


def flag_record(reason, retry_after, now=None):
    return {"reason": reason or "maintenance", "retry_after": int(retry_after),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}


def plan(state, current):
    """'write', 'remove' or None for the desired state ('on'/'off')."""
    if state not in ("on", "off"):
        raise ValueError("state must be on or off, got %r" % state)
    if state == "on":
        return None if current is not None else "write"
    return "remove" if current is not None else None


def write_flag(path, record, mode=0o644):
    """Atomically create the flag (rename of a temporary file in the same directory)."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise OSError("directory %s of the maintenance flag does not exist" % directory)
    fd, tmp = tempfile.mkstemp(prefix=".maintenance-", dir=directory)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh)
            fh.write("\n")
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_flag(path):
    if os.path.exists(path):
        os.unlink(path)
