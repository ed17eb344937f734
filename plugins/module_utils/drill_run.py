# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Run a playbook as its own ansible-playbook process (its own run directory and timeline), and detect.

The drill runs diagnosis and recovery as separate processes so that each keeps its own
``timeline.jsonl`` (incident_timeline callback, ``HB_RUN_DIR``) — the record an incident report is
rendered from.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone

from ansible_collections.healthbutler.recovery.plugins.module_utils.report_incident import diagnosis_summary
from ansible_collections.healthbutler.recovery.plugins.module_utils.timeline_file import iter_events

_TIMEOUT_RC = 124


def utc_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def playbook_argv(ansible_playbook, playbook, inventories, extra_vars_file=None):
    argv = [ansible_playbook, playbook]
    for inv in inventories or []:
        argv += ["-i", inv]
    if extra_vars_file:
        argv += ["-e", "@" + extra_vars_file]
    return argv


def failed_tasks(run_dir):
    """Failed/interrupted tasks recorded in a run directory's timeline (the recovery's evidence)."""
    return [{"task": rec.get("task"), "host": rec.get("host"), "status": rec["status"], "msg": rec.get("msg", "")}
            for rec in iter_events(os.path.join(run_dir, "timeline.jsonl"))
            if rec.get("event") == "task" and rec.get("status") in ("failed", "unreachable", "interrupted")]


def run_playbook(runner, ansible_playbook, playbook, inventories, run_dir, extra_vars=None, timeout=None, env=None):
    """Run one playbook; return rc, times, whether it timed out and the failed tasks of its timeline."""
    os.makedirs(run_dir, exist_ok=True)
    vars_file = None
    if extra_vars:
        vars_file = os.path.join(run_dir, "extra-vars.json")
        with open(vars_file, "w", encoding="utf-8") as fh:
            json.dump(extra_vars, fh, indent=1, sort_keys=True)
    started, t0 = utc_now(), time.monotonic()
    res = runner.run(playbook_argv(ansible_playbook, playbook, inventories, vars_file),
                     env=dict(env or {}, HB_RUN_DIR=run_dir, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                             LANG="C.UTF-8", LC_ALL="C.UTF-8"),
                     timeout=timeout)
    with open(os.path.join(run_dir, "console.log"), "w", encoding="utf-8") as fh:
        fh.write(res.stdout + res.stderr)
    failed = failed_tasks(run_dir)
    evidence = "; ".join("%s: %s" % (f["task"], f["msg"] or f["status"]) for f in failed[:3])
    return {"playbook": os.path.basename(playbook), "rc": res.rc, "start": started, "end": utc_now(),
            "duration_s": round(time.monotonic() - t0, 3), "timed_out": res.rc == _TIMEOUT_RC and timeout is not None,
            "run_dir": run_dir, "failed_tasks": failed, "evidence": evidence[:600]}


def find_diagnosis(run_dir):
    """The newest diagnosis.json under a directory, or None."""
    found = []
    for root, _dirs, files in os.walk(run_dir):
        if "diagnosis.json" in files:
            path = os.path.join(root, "diagnosis.json")
            found.append((os.path.getmtime(path), path))
    if not found:
        return None
    with open(sorted(found)[-1][1], encoding="utf-8") as fh:
        return json.load(fh)


def detect(runner, ansible_playbook, playbook, inventories, run_dir, attempts=5, delay=2.0, timeout=None,
           extra_vars=None, env=None, sleep=time.sleep):
    """Run the diagnosis until it classifies a P-level (or ``attempts`` runs said nothing).

    ``detected_at`` is the end of the first diagnosis run that classified the incident.
    """
    if not os.path.exists(playbook):
        return {"status": "unavailable", "detail": "unavailable: %s missing" % os.path.basename(playbook),
                "attempts": 0}
    tries = []
    for attempt in range(1, attempts + 1):
        sub = os.path.join(run_dir, "detect-%d" % attempt)
        run = run_playbook(runner, ansible_playbook, playbook, inventories, sub,
                           extra_vars=dict(extra_vars or {}, diagnose_run_dir=sub), timeout=timeout, env=env)
        try:
            summary = diagnosis_summary(find_diagnosis(sub))
        except (OSError, ValueError) as exc:
            summary = {"scenarios": [], "p_level": None, "findings": [], "error": str(exc)}
        tries.append({"attempt": attempt, "rc": run["rc"], "end": run["end"], "p_level": summary["p_level"],
                      "scenarios": summary["scenarios"], "run_dir": sub})
        if summary["p_level"]:
            return {"status": "detected", "detected_at": run["end"], "p_level": summary["p_level"],
                    "scenarios": summary["scenarios"],
                    "findings": [f["name"] for f in summary["findings"]][:10], "attempts": attempt,
                    "tries": tries, "run_dir": sub}
        if attempt < attempts:
            sleep(delay)
    last = tries[-1]
    detail = "not detected after %d diagnosis run(s)" % attempts
    if last["rc"] != 0 and not last["p_level"]:
        detail += " (last run rc=%s, no diagnosis.json classification)" % last["rc"]
    return {"status": "missed", "detail": detail, "attempts": attempts, "tries": tries,
            "p_level": None, "scenarios": []}
