# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""The runbook's five-section post-incident report (事故报告), built from a run directory.

A run directory holds ``timeline.jsonl`` files written by the incident_timeline callback (possibly in
sub-directories, e.g. a drill's detect/recover runs) and, when present, ``diagnosis.json`` (diagnose
role), ``recovery.json`` (recover-db) and ``result.json`` (a drilled scenario).
"""

from __future__ import annotations

import json
import os

from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_measure as measure
from ansible_collections.healthbutler.recovery.plugins.module_utils.drill_targets import escalation_step, targets_for
from ansible_collections.healthbutler.recovery.plugins.module_utils.report_render import (
    _html_table,
    _md_table,
    _page,
    esc,
)
from ansible_collections.healthbutler.recovery.plugins.module_utils.timeline_file import iter_events

PREVENTION = (("更新监控告警规则", "Update monitoring alert rules"), ("改进测试覆盖率", "Improve test coverage"),
              ("加强代码审查", "Strengthen code review"), ("优化系统架构", "Improve the system architecture"),
              ("改进部署流程", "Improve the deployment process"), ("更新文档", "Update the documentation"),
              ("团队培训", "Team training"))

TEXT = {
    "zh": {"title": "事故报告", "s1": "1. 事故概述", "s2": "2. 根因分析", "s3": "3. 影响评估", "s4": "4. 响应和恢复",
           "s5": "5. 改进措施", "start": "发生时间", "end": "结束时间", "duration": "持续时间", "scope": "影响范围",
           "severity": "严重程度", "outcome": "结果", "direct": "直接原因", "root": "根本原因", "trigger": "触发因素",
           "timeline": "时间线", "findings": "诊断发现", "users": "用户影响", "data": "数据影响",
           "business": "业务影响",
           "reputation": "声誉影响", "detect": "检测时间", "respond": "响应时间", "recover": "恢复时间",
           "actions": "采取的措施", "escalation": "升级路径", "short": "短期措施", "long": "长期措施",
           "prevent": "预防措施", "owner": "责任人和期限", "tbd": "待定", "none": "无",
           "not_recorded": "本次运行未记录（请补充）", "seconds": "秒", "rows_lost": "丢失行数", "downtime": "停机时间",
           "moment": "时刻", "elapsed": "已用时间", "step": "升级到", "event": "事件", "status": "状态",
           "host": "主机", "task": "任务", "not_recovered": "未恢复", "ok": "成功", "failed": "失败",
           "interrupted": "中断（运行未结束，见 run.json）",
           "incident": "事故记录", "no_incident": "无（本次运行未打开事故记录）", "notified": "通知对象",
           "channel": "渠道",
           "attempts": "尝试次数", "results": "结果"},
    "en": {"title": "Incident report", "s1": "1. Overview", "s2": "2. Root cause analysis", "s3": "3. Impact",
           "s4": "4. Response and recovery", "s5": "5. Improvements", "start": "Started", "end": "Ended",
           "duration": "Duration", "scope": "Scope", "severity": "Severity", "outcome": "Outcome",
           "direct": "Direct cause", "root": "Root cause", "trigger": "Trigger", "timeline": "Timeline",
           "findings": "Diagnosis findings", "users": "User impact", "data": "Data impact",
           "business": "Business impact", "reputation": "Reputation impact", "detect": "Detected",
           "respond": "Response started", "recover": "Recovered", "actions": "Actions taken",
           "escalation": "Escalation", "short": "Short-term", "long": "Long-term", "prevent": "Prevention",
           "owner": "Owner and due date", "tbd": "TBD", "none": "none",
           "not_recorded": "not recorded by this run (fill in)", "seconds": "s", "rows_lost": "rows lost",
           "downtime": "downtime", "moment": "Moment", "elapsed": "Elapsed", "step": "Escalated to",
           "event": "Event", "status": "Status", "host": "Host", "task": "Task", "not_recovered": "not recovered",
           "interrupted": "interrupted (the run never ended; see run.json)",
           "ok": "succeeded", "failed": "failed",
           "incident": "Incident record", "no_incident": "none (no incident record in this run)",
           "notified": "Notified", "channel": "Channel", "attempts": "Attempts", "results": "Results"},
}


class ReportError(ValueError):
    pass


def _walk(run_dir, name):
    found = []
    for root, dirs, files in os.walk(run_dir):
        dirs.sort()
        if name in files:
            found.append(os.path.join(root, name))
    return found


def _load_json(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def load_run(run_dir):
    """Every record the run directory holds. Fails when it has no timeline at all."""
    if not os.path.isdir(run_dir):
        raise ReportError("incident_report_run_dir: %s is not a directory" % run_dir)
    events = []
    for path in _walk(run_dir, "timeline.jsonl"):
        rel = os.path.relpath(os.path.dirname(path), run_dir)
        for rec in iter_events(path):
            rec["run"] = "" if rel == "." else rel
            events.append(rec)
    if not events:
        raise ReportError("incident_report_run_dir: no timeline.jsonl under %s (is the incident_timeline "
                          "callback enabled?)" % run_dir)
    events.sort(key=lambda r: r.get("start") or r.get("time") or "")
    diagnoses = [d for d in (_load_json(p) for p in _walk(run_dir, "diagnosis.json")) if isinstance(d, dict)]
    recoveries = [d for d in (_load_json(p) for p in _walk(run_dir, "recovery.json")) if isinstance(d, dict)]
    results = [d for d in (_load_json(p) for p in _walk(run_dir, "result.json")) if isinstance(d, dict)]
    journals = [d for d in (_load_json(p) for p in _walk(run_dir, "run.json")) if isinstance(d, dict)]
    return {"events": events, "diagnoses": diagnoses, "recoveries": recoveries, "results": results,
            "journals": journals, "incidents": load_incidents(run_dir)}


def run_outcome(run, failed_tasks):
    """ok, failed, or interrupted: a run journal still open, or a run that never wrote its end (killed)."""
    ends = [e for e in run["events"] if e.get("event") == "run_end"]
    if any(j.get("state") != "ended" for j in run.get("journals", [])):
        return "interrupted"
    if not ends and not run["recoveries"] and not run["results"]:
        return "interrupted"
    if any(e.get("status") == "interrupted" for e in ends):
        return "interrupted"
    if failed_tasks or any(e.get("status") != "ok" for e in ends) \
            or any(r.get("status") not in ("ok", None) for r in run["recoveries"]):
        return "failed"
    return "ok"


def load_incidents(run_dir):
    """The incident records the runs under ``run_dir`` point at (incident.json), newest state first:
    the record itself when it is still there, else the snapshot the run kept."""
    found = {}
    for path in _walk(run_dir, "incident.json"):
        ref = _load_json(path) or {}
        for item in ref.get("incidents") or []:
            if not isinstance(item, dict) or not item.get("id"):
                continue
            record = _load_json(item.get("path") or "") or item.get("snapshot")
            if isinstance(record, dict):
                old = found.get(item["id"])
                if old is None or (record.get("updated_at") or "") >= (old.get("updated_at") or ""):
                    found[item["id"]] = record
    return sorted(found.values(), key=lambda r: r.get("detected_at") or "")


def diagnosis_summary(diag):
    """Scenarios, P-level and findings from a diagnosis.json, whatever its nesting."""
    if not diag:
        return {"scenarios": [], "p_level": None, "findings": []}
    cls = diag.get("classification") if isinstance(diag.get("classification"), dict) else diag
    p_level = cls.get("severity") or cls.get("p_level") or diag.get("severity")
    scenarios = cls.get("scenarios") or cls.get("scenario") or []
    if not isinstance(scenarios, list):
        scenarios = [scenarios]
    scenarios = [s.get("id", s.get("number", s)) if isinstance(s, dict) else s for s in scenarios]
    findings = []
    for f in cls.get("findings") or diag.get("findings") or []:
        if isinstance(f, dict):
            name = f.get("title") or f.get("name") or f.get("rule") or f.get("id") or "finding"
            if f.get("summary") and f.get("summary") != name:
                name = "%s: %s" % (name, f["summary"])
            evidence = f.get("evidence") if f.get("evidence") is not None else f.get("detail", "")
            findings.append({"name": str(name), "evidence": evidence if isinstance(evidence, str)
                             else json.dumps(evidence, sort_keys=True, default=str)[:300],
                             "severity": f.get("severity")})
        else:
            findings.append({"name": str(f), "evidence": "", "severity": None})
    return {"scenarios": scenarios, "p_level": p_level, "findings": findings}


def build(run, incident_start=None, severity=None):
    """The report's data: five sections, each filled from the records (or saying what is missing)."""
    events = run["events"]
    tasks = [e for e in events if e.get("event") == "task"]
    times = [e.get("start") or e.get("time") for e in events] + [e.get("end") or e.get("time") for e in events]
    times = sorted(t for t in times if t)
    result = run["results"][0] if run["results"] else None
    start = incident_start or (result or {}).get("injected_at") or times[0]
    end = max([times[-1]] + [t for t in ((result or {}).get("steady_at"), (result or {}).get("end")) if t])
    failed = [t for t in tasks if t.get("status") in ("failed", "unreachable", "interrupted")]
    outcome = run_outcome(run, failed)
    diag = diagnosis_summary(run["diagnoses"][0] if run["diagnoses"] else None)
    if not diag["scenarios"] and (result or {}).get("detection"):
        diag["scenarios"] = result["detection"].get("scenarios") or []
    p_level = severity or diag["p_level"] or (result or {}).get("expected_p_level")
    base = measure.parse_iso(start)

    def moment(name, when):
        if not when:
            return {"name": name, "time": None, "elapsed_s": None, "escalation": None}
        elapsed = max(measure.parse_iso(when) - base, 0.0)
        return {"name": name, "time": when, "elapsed_s": round(elapsed, 1),
                "escalation": escalation_step(elapsed, p_level)}

    detect_at = (result or {}).get("detection", {}) or {}
    detect_at = detect_at.get("detected_at") or (
        run["diagnoses"][0].get("time") or run["diagnoses"][0].get("generated_at") if run["diagnoses"] else None) \
        or (failed[0]["end"] if failed else start)
    changing = [t for t in tasks if t.get("changed") or t.get("status") == "changed"]
    respond_at = changing[0]["start"] if changing else (tasks[0]["start"] if tasks else start)
    recovered_at = (result or {}).get("steady_at") or (end if outcome == "ok" else None)
    incident = (run.get("incidents") or [None])[0]
    if incident:
        # The incident record knows: detected (opened), responded (acknowledged), recovered (resolved).
        detect_at = incident.get("detected_at") or detect_at
        respond_at = incident.get("acknowledged_at")
        recovered_at = incident.get("resolved_at")
        p_level = p_level or incident.get("severity")
    moments = [moment("start", start), moment("detect", detect_at), moment("respond", respond_at),
               moment("recover", recovered_at), moment("end", end)]

    rows_lost, downtime = None, None
    if result and result.get("rpo"):
        rows_lost = result["rpo"]["lost_writes"]
    if result and result.get("writes"):
        downtime = result["writes"]["downtime_s"]
    row_changes = []
    for rec in run["recoveries"]:
        before, after = rec.get("rows_before") or {}, rec.get("rows_after") or {}
        for table in sorted(set(before) | set(after)):
            row_changes.append({"table": table, "before": before.get(table), "after": after.get(table)})
        if rows_lost is None and before and after:
            rows_lost = sum(max((before.get(t) or 0) - (after.get(t) or 0), 0) for t in before)
    if downtime is None and recovered_at:
        downtime = round(measure.parse_iso(recovered_at) - base, 1)

    key_events = [e for e in events if e.get("event") in ("play_start", "run_end")
                  or e.get("status") in ("changed", "failed", "unreachable", "interrupted")]
    return {
        "overview": {"start": start, "end": end, "duration_s": round(measure.parse_iso(end) - base, 1),
                     "hosts": sorted({t["host"] for t in tasks if t.get("host")}),
                     "playbooks": sorted({e["playbook"] for e in events if e.get("event") == "playbook_start"}),
                     "roles": sorted({t["role"] for t in tasks if t.get("role")}),
                     "severity": p_level, "outcome": outcome, "targets": targets_for(p_level),
                     "drill": (result or {}).get("name")},
        "root_cause": {"findings": diag["findings"], "scenarios": diag["scenarios"],
                       "failed_tasks": [{"time": t["end"], "host": t.get("host"), "role": t.get("role"),
                                         "task": t.get("task"), "msg": t.get("msg") or ""} for t in failed],
                       "drill_fault": (result or {}).get("description"),
                       "timeline": [{"time": e.get("start") or e.get("time"), "run": e.get("run"),
                                     "host": e.get("host"),
                                     "event": e.get("task") or e.get("play") or e.get("event"),
                                     "status": e.get("status") or e.get("event")} for e in key_events][:60]},
        "impact": {"rows_lost": rows_lost, "downtime_s": downtime, "row_changes": row_changes,
                   "writes": (result or {}).get("writes")},
        "response": {"moments": moments, "incident": _incident_summary(incident),
                     "notifications": _notifications(incident),
                     "actions": [{"time": t["start"], "host": t.get("host"), "task": t.get("task"),
                                  "status": t.get("status")}
                                 for t in tasks if t.get("status") in ("changed", "failed")][:40]},
        "improvements": {"short_term": ["%s: %s" % (t.get("task"), t.get("msg") or "failed") for t in failed][:10],
                         "prevention": [{"zh": zh, "en": en} for zh, en in PREVENTION]},
    }


def _incident_summary(incident):
    if not incident:
        return None
    keys = ("id", "status", "severity", "labels", "detected_at", "acknowledged_at", "acknowledged_by",
            "resolved_at", "resolved_by")
    out = {k: incident.get(k) for k in keys}
    out["steps_reached"] = [{"step": e.get("step"), "role": e.get("role"), "reached_at": e.get("reached_at"),
                             "why": e.get("why")} for e in incident.get("escalation") or []]
    out["resolution"] = {k: v for k, v in (incident.get("resolution") or {}).items() if k in ("playbook", "run_dir",
                                                                                              "time", "verification")}
    return out


def _notifications(incident):
    """Who was notified when: one row per delivery (never a URL, key or password: the record has none)."""
    rows = []
    for n in (incident or {}).get("notifications") or []:
        attempts = n.get("attempts") or []
        rows.append({"time": n.get("delivered_at") or n.get("time"), "event": n.get("event"), "step": n.get("step"),
                     "who": ", ".join(n.get("contacts") or []) + (" <%s>" % n["to"] if n.get("to") else ""),
                     "channel": "%s (%s)" % (n.get("channel") or "-", n.get("type") or "-"),
                     "status": n.get("status"), "attempts": len(attempts),
                     "results": "; ".join(a.get("result", "") for a in attempts)[:200] or n.get("reason") or ""})
    return rows


def _v(value, t):
    return t["not_recorded"] if value in (None, "", []) else value


def _sections(report, lang):
    """(heading, [(kind, payload)]) for both renderers; kinds: kv, list, table, checklist."""
    t = TEXT[lang]
    ov, rc, im, rs, iv = (report[k] for k in ("overview", "root_cause", "impact", "response", "improvements"))
    esc_rows = [[t[m["name"]], m["time"] or (t["not_recovered"] if m["name"] == "recover" else t["not_recorded"]),
                 "-" if m["elapsed_s"] is None else m["elapsed_s"],
                 (m["escalation"] or {}).get(lang, "-")] for m in rs["moments"]]
    direct = "; ".join("%s (%s): %s" % (f["task"], f["host"], f["msg"]) for f in rc["failed_tasks"][:3])
    return [
        (t["s1"], [("kv", [(t["start"], ov["start"]), (t["end"], ov["end"]),
                           (t["duration"], "%.1f %s" % (ov["duration_s"], t["seconds"])),
                           (t["scope"], "hosts %s; playbooks %s; roles %s" % (
                               ", ".join(ov["hosts"]) or "-", ", ".join(ov["playbooks"]) or "-",
                               ", ".join(ov["roles"]) or "-")),
                           (t["severity"], _v(ov["severity"], t)), (t["outcome"], t[ov["outcome"]])])]),
        (t["s2"], [("kv", [(t["direct"], direct or _v(rc["drill_fault"], t)),
                           (t["root"], _v(", ".join("S%s" % s for s in rc["scenarios"]), t)),
                           (t["trigger"], _v(rc["drill_fault"], t))]),
                   ("table", ([t["findings"], "evidence"],
                              [[f["name"], f["evidence"]] for f in rc["findings"]] or [[t["none"], "-"]])),
                   ("table", ([t["moment"], "run", t["host"], t["event"], t["status"]],
                              [[e["time"], e["run"] or ".", e["host"] or "-", e["event"], e["status"]]
                               for e in rc["timeline"]]))]),
        (t["s3"], [("kv", [(t["users"], "%s: %s" % (t["downtime"], _v(im["downtime_s"], t))),
                           (t["data"], "%s: %s" % (t["rows_lost"], _v(im["rows_lost"], t))),
                           (t["business"], _v(None, t)), (t["reputation"], _v(None, t))]),
                   ("table", (["table", "before", "after"],
                              [[c["table"], c["before"], c["after"]] for c in im["row_changes"]]
                              or [["-", "-", "-"]]))]),
        (t["s4"], _incident_parts(rs, t) + [
            ("table", ([t["moment"], "UTC", t["elapsed"] + " (s)", t["step"]], esc_rows)),
            ("table", ([t["moment"], t["host"], t["task"], t["status"]],
                       [[a["time"], a["host"] or "-", a["task"], a["status"]] for a in rs["actions"]]
                       or [["-", "-", "-", "-"]]))]),
        (t["s5"], [("list", [t["short"] + ": " + s for s in iv["short_term"]] or
                    [t["short"] + ": " + t["tbd"]]),
                   ("checklist", ["%s — %s: %s" % (p[lang], t["owner"], t["tbd"]) for p in iv["prevention"]])]),
    ]


def _incident_parts(rs, t):
    inc = rs.get("incident")
    if not inc:
        return [("kv", [(t["incident"], t["no_incident"])])]
    steps = ", ".join("%s (%s) %s" % (s["step"], s["role"], s["reached_at"]) for s in inc["steps_reached"])
    res = inc.get("resolution") or {}
    parts = [("kv", [(t["incident"], "%s (%s%s)" % (inc["id"], inc["status"],
                                                    ", drill" if "drill" in (inc.get("labels") or []) else "")),
                     (t["detect"], _v(inc["detected_at"], t)),
                     (t["respond"], "%s %s" % (_v(inc["acknowledged_at"], t),
                                               "(%s)" % inc["acknowledged_by"] if inc["acknowledged_by"] else "")),
                     (t["recover"], "%s %s" % (_v(inc["resolved_at"], t),
                                               "(%s %s)" % (res.get("playbook") or inc.get("resolved_by") or "",
                                                            res.get("run_dir") or "") if inc["resolved_at"] else "")),
                     (t["escalation"], steps or t["none"])])]
    rows = [[n["time"], n["event"], n["step"] or "-", n["who"] or "-", n["channel"], n["status"], n["attempts"],
             n["results"]] for n in rs.get("notifications") or []]
    parts.append(("table", ([t["moment"], t["event"], t["step"], t["notified"], t["channel"], t["status"],
                             t["attempts"], t["results"]], rows or [["-"] * 8])))
    return parts


def render_markdown(report, lang="zh"):
    t = TEXT[lang]
    out = ["# %s" % t["title"], ""]
    for heading, parts in _sections(report, lang):
        out += ["## %s" % heading, ""]
        for kind, payload in parts:
            if kind == "kv":
                out += ["- **%s**: %s" % (k, v) for k, v in payload]
            elif kind == "list":
                out += ["- %s" % i for i in payload]
            elif kind == "checklist":
                out += ["- [ ] %s" % i for i in payload]
            else:
                out.append(_md_table(*payload))
            out.append("")
    return "\n".join(out)


def render_html(report, lang="zh"):
    t = TEXT[lang]
    body = ["<h1>%s</h1>" % esc(t["title"])]
    for heading, parts in _sections(report, lang):
        body.append('<section><h2>%s</h2>' % esc(heading))
        for kind, payload in parts:
            if kind == "kv":
                body.append("<ul>" + "".join("<li><b>%s</b>: %s</li>" % (esc(k), esc(v)) for k, v in payload) + "</ul>")
            elif kind in ("list", "checklist"):
                mark = "&#9744; " if kind == "checklist" else ""
                body.append("<ul>" + "".join("<li>%s%s</li>" % (mark, esc(i)) for i in payload) + "</ul>")
            else:
                body.append(_html_table(*payload))
        body.append("</section>")
    return _page(t["title"], "\n".join(body), lang="zh-CN" if lang == "zh" else "en")
