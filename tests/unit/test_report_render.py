"""Drill and incident report rendering (Markdown, HTML with inline SVG), and the Chromium check."""

import json
import os

import pytest
from drill_helpers import render, timeline_rows

from ansible_collections.healthbutler.recovery.plugins.module_utils import (
    drill_catalog,
    drill_journal,
    drill_measure,
    report_incident,
    report_render,
)

T0 = drill_measure.parse_iso("2026-11-28T10:00:00Z")


def at(s):
    return drill_measure.iso(T0 + s)


def entry(name, rto, status_override=None):
    sc = drill_catalog.select([name])[0]
    if status_override:
        return drill_journal.evaluate(sc, {}, {"unavailable": status_override})
    marks = {"scenario_start": at(-5), "inject_start": at(0), "recover_start": at(3), "recover_end": at(rto - 1),
             "steady_after_end": at(rto), "scenario_end": at(rto + 5)}
    statuses = {"steady_before": "ok", "inject": "ok", "detect": "ok", "recover": "ok", "steady_after": "ok",
                "rollback": "ok"}
    detection = {"status": "detected", "detected_at": at(2), "p_level": sc["expected_p_level"],
                 "scenarios": [sc["runbook_scenario"]]}
    return drill_journal.evaluate(sc, marks, statuses, {}, detection, {"rc": 0}, [], [], {})


@pytest.fixture(scope="module")
def journal():
    entries = [entry(n, 10 + 5 * i) for i, n in enumerate(drill_catalog.DEFAULT_ORDER[:-1])]
    entries.append(entry("corrupt_backup", 0, "unavailable: verify_backups.yml missing"))
    return drill_journal.journal(entries, at(-60), at(600), "inventories/sandbox", "sandbox", "/runs/x")


def test_markdown_has_table_sections_and_checklist(journal):
    md = report_render.drill_markdown(journal)
    assert md.count("\n## ") == len(journal["scenarios"]) + 1
    assert "| app_crash " in md and "unavailable: verify_backups.yml missing" in md
    assert "- [x] 演练执行" in md and "- [ ] 参与人员通知" in md


def test_html_is_self_contained(journal):
    page = report_render.drill_html(journal)
    assert "<svg" in page and 'class="timeline-row"' in page
    for external in ("<script", "<link", "src=", "http://", "https://www.", "@import"):
        assert external not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert page.count('class="timeline-row"') == len(journal["scenarios"])


def test_html_escapes_text():
    evil = entry("app_crash", 10)
    evil["name"] = "<script>alert(1)</script>"
    page = report_render.drill_html(drill_journal.journal([evil], at(0), at(1), "i", "e", "/r"))
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_chromium_renders_one_row_per_scenario_without_console_errors(journal, tmp_path):
    page = tmp_path / "drill.html"
    page.write_text(report_render.drill_html(journal), encoding="utf-8")
    dom, console = render(page, str(tmp_path / "drill.png"))
    assert timeline_rows(dom) == [e["name"] for e in journal["scenarios"]]
    assert console == []
    assert (tmp_path / "drill.png").stat().st_size > 10000


def test_chromium_check_sees_console_errors(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><script>console.error('x'); nosuch();</script></body></html>")
    _unused, console = render(page, str(tmp_path / "bad.png"))
    assert len(console) == 2


# -- incident report -----------------------------------------------------------
def _timeline(path, events):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")


def task(name, start, end, status, **extra):
    return dict({"event": "task", "host": "db-1", "role": "pitr", "task": name, "start": at(start), "end": at(end),
                 "duration": end - start, "status": status, "changed": status == "changed"}, **extra)


@pytest.fixture
def failed_recover_db(tmp_path):
    _timeline(tmp_path / "timeline.jsonl", [
        {"event": "playbook_start", "time": at(0), "playbook": "playbooks/recover_db.yml"},
        {"event": "play_start", "time": at(0.1), "play": "Recover the database"},
        task("Pre-flight", 1, 3, "ok"), task("Stop the app", 3, 5, "changed"),
        task("Replay WAL", 5, 1500, "failed", msg="recovery ended before configured recovery target was reached"),
        task("Put the preserved data directory back", 1500, 1900, "changed"),
        {"event": "run_end", "time": at(1900), "status": "failed"}])
    (tmp_path / "recovery.json").write_text(json.dumps({"rows_before": {"public.health_data": 100200},
                                                        "rows_after": {"public.health_data": 100000}}))
    return tmp_path


@pytest.mark.parametrize("lang, heads", [
    ("zh", ["## 1. 事故概述", "## 2. 根因分析", "## 3. 影响评估", "## 4. 响应和恢复", "## 5. 改进措施"]),
    ("en", ["## 1. Overview", "## 2. Root cause analysis", "## 3. Impact", "## 4. Response and recovery",
            "## 5. Improvements"]),
])
def test_incident_report_has_five_filled_sections(failed_recover_db, lang, heads):
    report = report_incident.build(report_incident.load_run(str(failed_recover_db)), severity="P1")
    md = report_incident.render_markdown(report, lang)
    positions = [md.index(h) for h in heads]
    assert positions == sorted(positions)
    bodies = [md[a + len(h):b].strip() for a, h, b in zip(positions, heads, positions[1:] + [len(md)])]
    assert all(len(b) > 40 for b in bodies)
    assert "recovery ended before configured recovery target was reached" in md
    assert report["impact"]["rows_lost"] == 200
    assert report["overview"]["outcome"] == "failed"


def test_incident_report_escalation_at_each_moment(failed_recover_db):
    report = report_incident.build(report_incident.load_run(str(failed_recover_db)), severity="P1")
    moments = {m["name"]: m for m in report["response"]["moments"]}
    assert moments["detect"]["escalation"]["key"] == "team_lead"  # failure at 1500 s = 25 min
    assert moments["end"]["escalation"]["key"] == "tech_director"  # 1900 s = 31.7 min
    assert moments["recover"]["time"] is None  # never recovered
    md = report_incident.render_markdown(report, "zh")
    assert "团队负责人" in md and "技术总监" in md and "未恢复" in md
    p0 = report_incident.build(report_incident.load_run(str(failed_recover_db)), severity="P0")
    assert {m["escalation"]["key"] for m in p0["response"]["moments"] if m["escalation"]} == {"cto"}


def test_incident_report_prevention_checklist_and_html(failed_recover_db):
    report = report_incident.build(report_incident.load_run(str(failed_recover_db)))
    md = report_incident.render_markdown(report, "zh")
    assert md.count("- [ ] ") == 7 and "更新监控告警规则" in md
    page = report_incident.render_html(report, "en")
    assert page.count("<section>") == 5 and "<script" not in page


def test_incident_report_reads_diagnosis_and_drill_result(tmp_path):
    _timeline(tmp_path / "detect" / "timeline.jsonl", [task("Gather", 0, 2, "ok")])
    (tmp_path / "detect" / "diagnosis.json").write_text(json.dumps({"classification": {
        "severity": "P0", "scenarios": [2], "findings": [{"title": "database unreachable",
                                                          "evidence": "pg_isready: no response"}]}}))
    _timeline(tmp_path / "recover" / "timeline.jsonl", [task("Start PostgreSQL", 3, 9, "changed")])
    report = report_incident.build(report_incident.load_run(str(tmp_path)))
    assert report["overview"]["severity"] == "P0"
    assert report["root_cause"]["findings"][0] == {"name": "database unreachable",
                                                   "evidence": "pg_isready: no response", "severity": None}
    assert [e["run"] for e in report["root_cause"]["timeline"]] == ["recover"]


@pytest.mark.parametrize("lang, head", [("en", "| Moment | Host | Task | Status |"),
                                        ("zh", "| 时刻 | 主机 | 任务 | 状态 |")])
def test_incident_report_names_the_host_of_each_event_on_a_fleet(tmp_path, lang, head):
    _timeline(tmp_path / "timeline.jsonl", [
        task("Read the PM2 process", 0, 1, "ok", host="app-1"), task("Read the PM2 process", 0, 1, "ok", host="app-2"),
        task("Restart the app", 2, 6, "changed", host="app-1")])
    report = report_incident.build(report_incident.load_run(str(tmp_path)))
    assert [(a["host"], a["task"]) for a in report["response"]["actions"]] == [("app-1", "Restart the app")]
    assert [(e["host"], e["event"]) for e in report["root_cause"]["timeline"]] == [("app-1", "Restart the app")]
    assert report["overview"]["hosts"] == ["app-1", "app-2"]
    md = report_incident.render_markdown(report, lang)
    assert head in md and "| app-1 | Restart the app | changed |" in md


def test_incident_report_needs_a_timeline(tmp_path):
    with pytest.raises(report_incident.ReportError, match="no timeline.jsonl"):
        report_incident.load_run(str(tmp_path))
    with pytest.raises(report_incident.ReportError, match="not a directory"):
        report_incident.load_run(os.path.join(str(tmp_path), "nope"))


def _run(events, recoveries=(), results=(), journals=()):
    return {"events": list(events), "recoveries": list(recoveries), "results": list(results),
            "journals": list(journals), "diagnoses": []}


TASK = {"event": "task", "status": "changed", "start": "2026-12-02T01:00:00Z", "end": "2026-12-02T01:00:01Z"}


def test_a_run_killed_before_its_end_is_interrupted_not_a_success():
    from ansible_collections.healthbutler.recovery.plugins.module_utils.report_incident import run_outcome
    assert run_outcome(_run([TASK]), []) == "interrupted"  # SIGKILL: no run_end, no record
    assert run_outcome(_run([TASK, {"event": "run_end", "status": "ok"}],
                            journals=[{"state": "running"}]), []) == "interrupted"
    assert run_outcome(_run([TASK, {"event": "run_end", "status": "interrupted"}]), []) == "interrupted"
    assert run_outcome(_run([TASK, {"event": "run_end", "status": "ok"}], recoveries=[{"status": "aborted"}]),
                       []) == "failed"
    assert run_outcome(_run([TASK, {"event": "run_end", "status": "ok"}], recoveries=[{"status": "ok"}],
                            journals=[{"state": "ended"}]), []) == "ok"
