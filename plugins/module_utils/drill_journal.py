# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Judge one drilled scenario and assemble the drill journal.

Journal fields follow chaostoolkit's journal (start, end, duration, status, deviated, steady states
before/after, rollbacks), per scenario and per step.
"""

from __future__ import annotations

import os

from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_measure as measure
from ansible_collections.healthbutler.recovery.plugins.module_utils.drill_targets import targets_for

STEPS = ("prepare", "steady_before", "writer", "inject", "effect", "detect", "heal", "recover", "steady_after",
         "rollback")
# The verdicts a scenario can get. injection_failed: the fault never took hold (nothing graded);
# proved: an inject-only run saw the fault and got the steady state back after the rollback.
VERDICTS = ("passed", "failed", "aborted", "injection_failed", "proved", "unavailable")
CHECKLIST = (
    ("故障场景设计", "scenario design", "done", "catalogue: {scenarios}"),
    ("参与人员通知", "notify participants", "manual", "tell ops, dev and QA before the quarterly drill"),
    ("演练时间安排", "schedule the drill", "manual", "pick the quarterly window with the team"),
    ("恢复流程文档", "recovery procedure documented", "done", "docs/<playbook>.md of every recovery playbook"),
    ("演练执行", "drill executed", "done", "{executed} scenario(s) run, {passed} passed"),
    ("结果评估", "results evaluated", "done", "detect/RTO/RPO compared with the P-level targets"),
    ("改进建议", "improvement proposals", "manual", "turn each deviation into an action item: {deviations}"),
    ("文档更新", "documentation updated", "manual", "update the runbook where the drill deviated"),
)


def _step(name, marks, statuses, details):
    start, end = marks.get(name + "_start"), marks.get(name + "_end")
    duration = measure.rto(start, end) if start and end else None
    return {"name": name, "status": statuses.get(name, "not_run"), "start": start, "end": end,
            "duration_s": duration, "detail": details.get(name)}


def _injection_failure(statuses, details, effect):
    """Why the fault never took hold, or None when it did (or the injection was never reached)."""
    if statuses.get("inject") == "failed":
        return "injection failed: %s" % (details.get("inject") or "see the timeline")
    if effect and not effect.get("seen"):
        return "the fault never took hold: %s not seen within %s s; last look: %s" % (
            effect.get("expect") or "its effect", effect.get("bound_s"), effect.get("observation") or "nothing")
    if statuses.get("effect") == "failed":
        return "the effect probe failed: %s" % (details.get("effect") or "see the timeline")
    return None


def _ungraded(entry, status, deviations, statuses, details, writes):
    """A verdict without grading: no detection, recovery, RTO or RPO is judged."""
    if statuses.get("rollback") not in ("ok", None):
        deviations.append("rollback of the injection: %s" % (details.get("rollback") or statuses.get("rollback")))
    if statuses.get("steady_after") not in ("ok", None):
        deviations.append("steady state not back after the rollback: %s" % (details.get("steady_after") or "failed"))
    entry.update(status=status, deviated=bool(deviations), deviations=deviations, detection=None, recovery=None,
                 rto_s=None, rpo=None, target_met=None,
                 writes=measure.write_summary(writes, since=measure.parse_iso(entry["injected_at"])
                                              if entry["injected_at"] else None))
    return entry


def evaluate(scenario, marks, statuses, details=None, detection=None, recovery=None, writes=None,
             present_ids=None, facts=None, effect=None, mode="full"):
    """The journal entry of one scenario: measurements, targets, deviations and the verdict.

    ``effect`` is what the effect probe saw after the injection. A fault that never took hold ends as
    ``injection_failed`` and nothing else is graded. In ``inject_only`` mode nothing but the fault's effect,
    its rollback and the steady state after it is judged: ``proved`` when all three held.
    """
    details = details or {}
    detection = dict(detection or {})
    recovery = dict(recovery or {})
    facts = facts or {}
    writes = writes or []
    steps = [_step(n, marks, statuses, details) for n in STEPS if n in statuses]
    entry = {
        "name": scenario["name"], "description": scenario.get("description"), "fault": scenario.get("fault"),
        "runbook_scenario": scenario.get("runbook_scenario"), "expected_p_level": scenario.get("expected_p_level"),
        "recovery_playbook": scenario["recovery"]["playbook"], "start": marks.get("scenario_start"),
        "end": marks.get("scenario_end"), "steps": steps, "facts": facts,
        "steady_state_before": {"ok": statuses.get("steady_before") == "ok", "detail": details.get("steady_before")},
        "steady_state_after": {"ok": statuses.get("steady_after") == "ok", "detail": details.get("steady_after")},
        "rollbacks": [{"name": scenario.get("fault"), "status": statuses.get("rollback", "not_run"),
                       "detail": details.get("rollback")}],
        "injected_at": marks.get("inject_start"), "steady_at": marks.get("steady_after_end")
        if statuses.get("steady_after") == "ok" else None, "mode": mode,
        "effect": dict(effect) if effect else None,
    }
    entry["duration_s"] = measure.rto(entry["start"], entry["end"]) if entry["start"] and entry["end"] else None
    if statuses.get("unavailable"):
        entry.update(status="unavailable", deviated=False, deviations=[statuses["unavailable"]],
                     detection=None, recovery=None, rto_s=None, rpo=None, writes=None, targets=None)
        return entry

    p_level = scenario.get("expected_p_level")
    targets = targets_for(p_level)
    entry["targets"] = targets
    failure = _injection_failure(statuses, details, effect) if statuses.get("steady_before") == "ok" else None
    if failure:
        return _ungraded(entry, "injection_failed", [failure], statuses, details, writes)
    if mode == "inject_only" and statuses.get("steady_before") == "ok":
        deviations = [] if effect else ["the effect probe did not run"]
        entry = _ungraded(entry, "proved", deviations, statuses, details, writes)
        entry["status"] = "failed" if entry["deviations"] else "proved"
        return entry
    deviations = []
    if statuses.get("steady_before") != "ok":
        deviations.append("not steady before injection: %s" % (details.get("steady_before") or "probe failed"))
    if statuses.get("aborted"):
        deviations.append("aborted: %s" % statuses["aborted"])
    for step in ("prepare", "writer", "drill"):
        if statuses.get(step) == "failed":
            deviations.append("%s failed: %s" % (step, details.get(step) or "see the timeline"))

    # detection
    if detection:
        ttd = measure.rto(marks.get("inject_start"), detection.get("detected_at")) \
            if detection.get("detected_at") else None
        detection["time_to_detect_s"] = ttd
        if detection.get("status") == "detected":
            detection["scenario_match"] = scenario.get("runbook_scenario") in (detection.get("scenarios") or [])
            detection["p_level_match"] = detection.get("p_level") == p_level
            if not detection["scenario_match"]:
                deviations.append("detected as scenario %s, expected %s" % (
                    detection.get("scenarios") or "none", scenario.get("runbook_scenario")))
            if not detection["p_level_match"]:
                deviations.append("classified %s, expected %s" % (detection.get("p_level") or "none", p_level))
            expected_cause = scenario.get("expected_cause")
            if expected_cause:
                cause = detection.get("cause") or {}
                detection["cause_match"] = cause.get("id") in expected_cause
                if not detection["cause_match"]:
                    deviations.append("cause %s (%s), expected %s" % (
                        cause.get("id") or "none", (cause.get("line") or "")[:200], " or ".join(expected_cause)))
            if targets and ttd is not None and ttd > targets["response_s"]:
                deviations.append("time to detect %.0f s over the %s response target %d s"
                                  % (ttd, p_level, targets["response_s"]))
        elif detection.get("status") not in (None, "not_run", "skipped", "reported"):
            deviations.append("detection: %s" % (detection.get("detail") or detection.get("status")))
    entry["detection"] = detection or None

    # recovery
    if recovery:
        expect = scenario["recovery"].get("expect", "success")
        rc = recovery.get("rc")
        recovery["expected"] = expect
        recovery["status"] = "ok" if rc is not None and ((rc == 0) == (expect == "success")) else "failed"
        if recovery["status"] != "ok":
            deviations.append("recovery %s %s (rc=%s, expected %s)%s" % (
                os.path.basename(scenario["recovery"]["playbook"]),
                "failed" if expect == "success" else "did not fail", rc, expect,
                ": " + recovery["evidence"] if recovery.get("evidence") else ""))
        named = facts.get(scenario.get("evidence_fact") or "")
        if named and os.path.basename(named) not in (recovery.get("evidence") or ""):
            deviations.append("%s did not name %s in its failure" % (
                os.path.basename(scenario["recovery"]["playbook"]), os.path.basename(named)))
    entry["recovery"] = recovery or None

    if statuses.get("recovered") == "failed":
        deviations.append("the recovery did not bring back what was lost: %s" % (details.get("recovered") or "-"))
    if statuses.get("steady_before") == "ok" and statuses.get("steady_after") != "ok":
        deviations.append("steady state not reached after recovery: %s"
                          % (details.get("steady_after") or "not probed (an earlier step failed)"))
    if statuses.get("rollback") not in ("ok", None):
        deviations.append("rollback of the injection: %s" % (details.get("rollback") or statuses.get("rollback")))

    # RTO / RPO
    entry["rto_s"] = measure.rto(entry["injected_at"], entry["steady_at"])
    if targets and entry["rto_s"] is not None and entry["rto_s"] > targets["resolution_s"]:
        deviations.append("RTO %.0f s over the %s resolution target %d s" % (entry["rto_s"], p_level,
                                                                             targets["resolution_s"]))
    # A cutoff only for a recovery that discards later writes by design (whole-cluster PITR): rows mode keeps them.
    cutoff = facts.get("cutoff_epoch") if scenario.get("rpo_cutoff") else None
    entry["writes"] = measure.write_summary(writes, since=measure.parse_iso(entry["injected_at"])
                                            if entry["injected_at"] else None)
    if scenario.get("scope") == "app" and facts.get("fault_app_hosts"):
        entry["blast_radius"] = {"faulted": facts["fault_app_hosts"],
                                 "spared": sorted(set(entry["writes"].get("by_host") or {}) -
                                                  set(facts["fault_app_hosts"]))}
        deviations.extend(measure.blast_radius(entry["writes"], facts["fault_app_hosts"]))
    entry["rpo"] = measure.rpo(writes, present_ids, cutoff=cutoff) if present_ids is not None else None
    if entry["rpo"] is None and measure.acknowledged(writes):
        deviations.append("RPO not measured: the acknowledged rows could not be read after recovery")
    window = measure.replication_window(entry["rpo"], facts) if scenario.get("rpo_window") == "replication" else None
    if window is not None:
        entry["rpo"]["replication_window"] = window
    if entry["rpo"] and entry["rpo"]["lost_writes"] and not (window and window["explained"]):
        deviations.append("%d acknowledged write(s) lost (RPO target 0), from %s to %s" % (
            entry["rpo"]["lost_writes"], entry["rpo"]["lost_span"]["first"], entry["rpo"]["lost_span"]["last"]))
    entry["target_met"] = {
        "response": None if not (targets and detection.get("time_to_detect_s") is not None)
        else detection["time_to_detect_s"] <= targets["response_s"],
        "resolution": None if not (targets and entry["rto_s"] is not None)
        else entry["rto_s"] <= targets["resolution_s"],
        "rpo": None if entry["rpo"] is None else entry["rpo"]["lost_writes"] == 0,
    }
    entry["deviations"] = deviations
    entry["deviated"] = bool(deviations)
    if statuses.get("aborted") or statuses.get("steady_before") != "ok":
        entry["status"] = "aborted"
    else:
        entry["status"] = "failed" if deviations else "passed"
    return entry


def checklist(entries):
    """The runbook's 演练检查清单 with what this run did and what remains manual."""
    executed = [e for e in entries if e["status"] in ("passed", "failed", "aborted", "injection_failed", "proved")]
    deviations = sum(len(e.get("deviations") or []) for e in executed)
    values = {"scenarios": ", ".join(e["name"] for e in entries), "executed": len(executed),
              "passed": sum(1 for e in entries if e["status"] == "passed"), "deviations": deviations}
    items = []
    for zh, en, state, note in CHECKLIST:
        done = state == "done" and (zh != "演练执行" or executed)
        items.append({"zh": zh, "en": en, "done": done, "by": "drill" if state == "done" else "manual",
                      "note": note.format(**values)})
    return items


def journal(entries, started, ended, inventory, environment, run_dir):
    """The whole drill: scenarios plus totals and the checklist."""
    counts = {}
    for e in entries:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    return {
        "kind": "healthbutler.recovery.drill", "version": 1, "start": started, "end": ended,
        "duration_s": measure.rto(started, ended) if started and ended else None,
        "inventory": inventory, "environment": environment, "run_dir": run_dir,
        "status": "passed" if entries and all(e["status"] in ("passed", "proved") for e in entries) else "failed",
        "deviated": any(e.get("deviated") for e in entries), "counts": counts,
        "scenarios": entries, "checklist": checklist(entries),
        "not_passed": [{"name": e["name"], "status": e["status"], "why": (e.get("deviations") or [""])[0][:300]}
                       for e in entries if e["status"] not in ("passed", "proved")],
    }


def table_rows(entries):
    """One row per scenario for the console table."""
    rows = []
    for e in entries:
        det = e.get("detection") or {}
        tg = e.get("targets") or {}
        rpo = e.get("rpo") or {}
        rows.append({
            "scenario": e["name"],
            "detected_as": ("S%s" % ",".join(str(s) for s in det.get("scenarios") or [])
                            if det.get("scenarios") else (det.get("status") or "-")),
            "p_level": "%s/%s" % (det.get("p_level") or "-", e.get("expected_p_level") or "-"),
            "effect_s": _effect(e.get("effect")),
            "detect_s": _fmt(det.get("time_to_detect_s")), "rto_s": _fmt(e.get("rto_s")),
            "rpo": "-" if not rpo else "%d lost%s" % (rpo["lost_writes"], (", %d discarded" % rpo[
                "discarded_after_cutoff"]) if rpo.get("discarded_after_cutoff") else ""),
            "downtime_s": _fmt((e.get("writes") or {}).get("downtime_s")),
            "target": "-" if not tg else "%s/%s" % (_dur(tg["response_s"]), _dur(tg["resolution_s"])),
            "result": e["status"] if e["status"] != "unavailable" else (e.get("deviations") or ["unavailable"])[0],
        })
    return rows


def _effect(effect):
    if not effect:
        return "-"
    return _fmt(effect.get("after_injection_s")) if effect.get("seen") else "not seen"


def _fmt(value):
    return "-" if value is None else "%.1f" % value


def _dur(seconds):
    return "%dh" % (seconds // 3600) if seconds % 3600 == 0 else "%dm" % (seconds // 60)


def format_table(rows):
    cols = ("scenario", "effect_s", "detected_as", "p_level", "detect_s", "rto_s", "downtime_s", "rpo", "target",
            "result")
    heads = ("scenario", "effect s", "detected as", "P (got/exp)", "detect s", "RTO s", "downtime s", "RPO",
             "target resp/res", "result")
    widths = [max(len(h), *(len(str(r[c])) for r in rows)) if rows else len(h) for c, h in zip(cols, heads)]

    def line(vals):
        return "| " + " | ".join(str(v).ljust(w) for v, w in zip(vals, widths)) + " |"
    out = [line(heads), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line([r[c] for c in cols]) for r in rows]
    return "\n".join(out)
