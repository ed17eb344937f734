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

# Host-load findings: they describe the machine, not the drilled system (other work on a shared 2-core host
# can push CPU over 80 %). Present in the pre-injection baseline, they are not residue and are not judged.
HOST_LOAD_FINDINGS = ("host_cpu_high",)
_SEVERITIES = ("P0", "P1", "P2", "P3")


def utc_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def playbook_argv(ansible_playbook, playbook, inventories, extra_vars_file=None, limit=None):
    argv = [ansible_playbook, playbook]
    for inv in inventories or []:
        argv += ["-i", inv]
    if limit:
        argv += ["--limit", ",".join(limit)]
    if extra_vars_file:
        argv += ["-e", "@" + extra_vars_file]
    return argv


def failed_tasks(run_dir):
    """Failed/interrupted tasks recorded in a run directory's timeline (the recovery's evidence)."""
    return [{"task": rec.get("task"), "host": rec.get("host"), "status": rec["status"], "msg": rec.get("msg", "")}
            for rec in iter_events(os.path.join(run_dir, "timeline.jsonl"))
            if rec.get("event") == "task" and rec.get("status") in ("failed", "unreachable", "interrupted")]


def run_playbook(runner, ansible_playbook, playbook, inventories, run_dir, extra_vars=None, timeout=None, env=None,
                 limit=None):
    """Run one playbook (on the ``limit`` hosts only, when given); return rc, times, timeout, failed tasks."""
    os.makedirs(run_dir, exist_ok=True)
    vars_file = None
    if extra_vars:
        vars_file = os.path.join(run_dir, "extra-vars.json")
        with open(vars_file, "w", encoding="utf-8") as fh:
            json.dump(extra_vars, fh, indent=1, sort_keys=True)
    started, t0 = utc_now(), time.monotonic()
    res = runner.run(playbook_argv(ansible_playbook, playbook, inventories, vars_file, limit),
                     env=dict(env or {}, HB_RUN_DIR=run_dir, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                              LANG="C.UTF-8", LC_ALL="C.UTF-8"),
                     timeout=timeout)
    with open(os.path.join(run_dir, "console.log"), "w", encoding="utf-8") as fh:
        fh.write(res.stdout + res.stderr)
    failed = failed_tasks(run_dir)
    evidence = "; ".join("%s: %s" % (f["task"], f["msg"] or f["status"]) for f in failed[:3])
    return {"playbook": os.path.basename(playbook), "rc": res.rc, "limit": list(limit or []),
            "start": started, "end": utc_now(),
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


def raw_findings(diag):
    """The diagnosis' findings as dicts with ``id``, ``severity``, ``scenario`` (and ``summary``)."""
    if not diag:
        return []
    cls = diag.get("classification") if isinstance(diag.get("classification"), dict) else diag
    return [f for f in cls.get("findings") or diag.get("findings") or [] if isinstance(f, dict)]


def diagnosis_cause(diag):
    """The diagnosis' likely cause as ``{"id", "line"}``, or None."""
    cls = (diag or {}).get("classification") if isinstance((diag or {}).get("classification"), dict) else diag
    cause = (cls or {}).get("cause")
    if not isinstance(cause, dict):
        return None
    return {"id": cause.get("id"), "line": str(cause.get("line") or cause.get("summary") or "")[:400]}


def judge(diag, ignore=()):
    """Scenarios, P-level, findings and cause of a diagnosis, leaving out findings whose id is in ``ignore``.

    Without anything to ignore this is the diagnosis' own classification.
    """
    summary = dict(diagnosis_summary(diag), cause=diagnosis_cause(diag))
    ignore = set(ignore or ())
    raw = raw_findings(diag)
    ignored = [f.get("id") for f in raw if f.get("id") in ignore]
    if not ignored:
        return dict(summary, ignored=[])
    kept = [f for f in raw if f.get("id") not in ignore]
    ranked = sorted(kept, key=lambda f: _SEVERITIES.index(f["severity"]) if f.get("severity") in _SEVERITIES else 9)
    scenarios = []
    for f in ranked:
        if f.get("scenario") is not None and f["scenario"] not in scenarios:
            scenarios.append(f["scenario"])
    names = [f for f in summary["findings"] if f["name"].split(":")[0] not in ignore]
    p_level = ranked[0].get("severity") if ranked else None
    # What the users lose (the classification's impact level) can be more severe than any finding: it stays.
    impact = ((diag.get("classification") or {}).get("impact") or {}).get("level") if ranked else None
    if impact in _SEVERITIES and (p_level not in _SEVERITIES or _SEVERITIES.index(impact) < _SEVERITIES.index(p_level)):
        p_level = impact
    return {"scenarios": scenarios, "p_level": p_level,
            "findings": names, "ignored": sorted(set(ignored)), "cause": summary["cause"]}


def baseline(runner, ansible_playbook, playbook, inventories, run_dir, attempts=3, delay=10.0, timeout=None,
             extra_vars=None, env=None, sleep=time.sleep):
    """Diagnose the steady state before an injection: ``clean`` when no finding but host load is left.

    Anything else (an error-log signature, slow statements, memory over the threshold...) is residue of
    an earlier fault: the next scenario would be judged on it. Retried ``attempts`` times so that residue
    that ages out (a restart counter) can clear.
    """
    if not os.path.exists(playbook):
        return {"status": "unavailable", "detail": "unavailable: %s missing" % os.path.basename(playbook),
                "residue": [], "host_load": [], "attempts": 0}
    for attempt in range(1, attempts + 1):
        sub = os.path.join(run_dir, "baseline-%d" % attempt)
        run = run_playbook(runner, ansible_playbook, playbook, inventories, sub,
                           extra_vars=dict(extra_vars or {}, diagnose_run_dir=sub), timeout=timeout, env=env)
        try:
            diag = find_diagnosis(sub)
        except (OSError, ValueError):
            diag = None
        if diag is None:
            residue = ["no diagnosis (rc=%s)" % run["rc"]]
            host_load = []
        else:
            raw = raw_findings(diag)
            host_load = sorted({f.get("id") for f in raw if f.get("id") in HOST_LOAD_FINDINGS})
            residue = ["%s: %s" % (f.get("id"), f.get("summary", "")) for f in raw
                       if f.get("id") not in HOST_LOAD_FINDINGS]
        if not residue:
            return {"status": "clean", "residue": [], "host_load": host_load, "attempts": attempt, "run_dir": sub}
        if attempt < attempts:
            sleep(delay)
    return {"status": "residue", "residue": residue[:10], "host_load": host_load, "attempts": attempts,
            "run_dir": sub, "detail": "residue of an earlier fault: %s" % "; ".join(residue)[:400]}


def detect(runner, ansible_playbook, playbook, inventories, run_dir, attempts=5, delay=2.0, timeout=None,
           extra_vars=None, env=None, sleep=time.sleep, ignore=()):
    """Run the diagnosis until it classifies a P-level (or ``attempts`` runs said nothing).

    ``detected_at`` is the end of the first diagnosis run that classified the incident. ``ignore`` names
    host-load findings that the steady-state baseline already had: they are left out of the judgement
    (and listed under ``ignored``).
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
            summary = judge(find_diagnosis(sub), ignore)
        except (OSError, ValueError) as exc:
            summary = {"scenarios": [], "p_level": None, "findings": [], "ignored": [], "error": str(exc)}
        tries.append({"attempt": attempt, "rc": run["rc"], "end": run["end"], "p_level": summary["p_level"],
                      "scenarios": summary["scenarios"], "run_dir": sub})
        if summary["p_level"]:
            return {"status": "detected", "detected_at": run["end"], "p_level": summary["p_level"],
                    "scenarios": summary["scenarios"], "cause": summary.get("cause"),
                    "findings": [f["name"] for f in summary["findings"]][:10], "attempts": attempt,
                    "ignored_baseline": summary["ignored"],
                    "tries": tries, "run_dir": sub}
        if attempt < attempts:
            sleep(delay)
    last = tries[-1]
    detail = "not detected after %d diagnosis run(s)" % attempts
    if last["rc"] != 0 and not last["p_level"]:
        detail += " (last run rc=%s, no diagnosis.json classification)" % last["rc"]
    return {"status": "missed", "detail": detail, "attempts": attempts, "tries": tries,
            "p_level": None, "scenarios": []}
