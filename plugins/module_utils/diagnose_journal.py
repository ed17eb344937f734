# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""The system journal of the app's unit: the runbook's ``journalctl -u health-butler -n 500``.

Read only where systemd's journal exists (systemd running as PID 1, as ``sd_booted()`` tests:
``/run/systemd/system`` is a directory); elsewhere the result says "no journal on this host".
Lines are redacted like every other log the diagnosis reads.
"""

from __future__ import annotations

import os

from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_logs
from ansible_collections.healthbutler.recovery.plugins.module_utils.redact import redact_text

NO_ENTRIES = ("-- No entries --", "-- Journal begins", "-- Logs begin", "-- Boot ")


def booted(run_dir="/run/systemd/system"):
    return os.path.isdir(run_dir)


def journal_argv(journalctl, unit, lines):
    return [journalctl, "-u", unit, "-n", str(int(lines)), "--no-pager", "-o", "short-iso"]


def parse(stdout, max_len=500):
    """journalctl text -> its log lines, redacted, without journalctl's own ``--`` remarks."""
    return [redact_text(line)[:max_len] for line in stdout.splitlines()
            if line.strip() and not line.startswith(NO_ENTRIES)]


def read_journal(runner, unit, lines=500, journalctl="journalctl", is_booted=None, timeout=20):
    """{available, unit, reason | lines, count, summary}; never raises."""
    out = {"available": False, "unit": unit, "command": "journalctl -u %s -n %s" % (unit, int(lines))}
    if not (booted() if is_booted is None else is_booted):
        out["reason"] = "no journal on this host (systemd is not PID 1: /run/systemd/system is missing)"
        return out
    if not journalctl:
        out["reason"] = "no journal on this host (journalctl not found)"
        return out
    res = runner.run(journal_argv(journalctl, unit, lines), timeout=timeout)
    if res.rc != 0:
        said = redact_text((res.stderr or res.stdout).strip())[:300]
        out["reason"] = "journalctl failed (rc=%s): %s" % (res.rc, said)
        return out
    got = parse(res.stdout)
    out.update(available=True, lines=got, count=len(got), summary=diagnose_logs.summarize(got))
    return out
