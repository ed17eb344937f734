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


def wait_for_answer(fetch, status, header=None, timeout=60.0, interval=0.1, clock=time.monotonic, sleep=time.sleep):
    """Ask ``fetch()`` (-> (status, headers dict with lower-case names), or None when nothing answers) until it
    answers ``status`` (and carries ``header``, when given), at most ``timeout`` seconds.

    Returns {"status", "headers", "waited_s", "tries"}; raises TimeoutError naming the last answer.
    """
    start = clock()
    tries, last = 0, None
    while True:
        tries += 1
        last = fetch()
        if last is not None and last[0] == status and (header is None or header.lower() in last[1]):
            return {"status": last[0], "headers": last[1], "waited_s": round(clock() - start, 2), "tries": tries}
        if clock() - start >= timeout:
            seen = "no answer" if last is None else "status %s%s" % (
                last[0], "" if header is None or header.lower() in last[1] else " without %s" % header)
            raise TimeoutError("expected status %s%s within %ss, last seen: %s after %d tries"
                               % (status, " with %s" % header if header else "", timeout, seen, tries))
        sleep(interval)
