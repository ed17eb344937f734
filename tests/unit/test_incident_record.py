"""Incident lifecycle, escalation path, channels and retries, with a fake transport and a fake clock."""

import json
import os

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import incident_action as action
from ansible_collections.healthbutler.recovery.plugins.module_utils import incident_notify as notify
from ansible_collections.healthbutler.recovery.plugins.module_utils import incident_record as rec
from ansible_collections.healthbutler.recovery.plugins.module_utils import report_incident

SECRET_URL = "https://hooks.example.test/services/T000/B000/s3cr3tT0ken"
PD_KEY = "R0UT1NGK3Y0000000000000000000000"
SMTP_PASSWORD = "smtp-pa55word"


class FakeSender:
    """Answers each URL from a script of statuses (then 200); records every call."""

    def __init__(self, script=None, mail_error=None):
        self.script, self.mail_error = dict(script or {}), mail_error
        self.posts, self.mails = [], []

    def post_json(self, url, body, timeout, headers=None):
        self.posts.append((url, body))
        queue = self.script.get(url) or []
        answer = queue.pop(0) if queue else 200
        if isinstance(answer, Exception):
            raise answer
        return answer

    def send_mail(self, cfg, to, subject_line, text, timeout):
        if self.mail_error:
            raise self.mail_error
        self.mails.append((to, subject_line))
        return 250


CONTACTS = {"oncall": {"role": "on-call", "email": "oncall@x.test", "channels": ["hook", "pd", "mail"]},
            "team_lead": {"role": "lead", "email": "lead@x.test", "channels": ["hook", "mail"]},
            "tech_director": {"role": "director", "email": "dir@x.test", "channels": ["mail"]},
            "cto": {"role": "CTO", "email": "", "channels": ["mail"]}}
CHANNELS = [{"name": "hook", "type": "slack", "url": SECRET_URL},
            {"name": "pd", "type": "pagerduty", "routing_key": PD_KEY, "url": "http://127.0.0.1:9/pd"},
            {"name": "mail", "type": "email", "host": "127.0.0.1", "port": 25, "from": "hb@x.test",
             "username": "hb", "password": SMTP_PASSWORD},
            {"name": "drills", "type": "webhook", "url": "http://127.0.0.1:9/drill"}]


def params(tmp_path, **kw):
    p = {"action": "open", "incident_dir": str(tmp_path / "incidents"), "contacts": CONTACTS, "channels": CHANNELS,
         "escalation": [], "retries": 3, "backoff_s": 1, "timeout_s": 5, "drill_channel": "drills",
         "now": "2026-12-02T00:00:00Z", "severity": "P1", "scenarios": [2], "hosts": ["db-1"], "summary": "db down"}
    p.update(kw)
    return p


def at(minutes):
    return "2026-12-02T%02d:%02d:00Z" % (minutes // 60, minutes % 60)


@pytest.fixture
def run(tmp_path):
    sender, sleeps = FakeSender(), []

    def go(check=False, **kw):
        return action.run(params(tmp_path, **kw), sender=sender, sleep=sleeps.append, check=check)
    go.sender, go.sleeps = sender, sleeps
    return go


def test_p1_step_by_step_each_once_then_ack_stops(run):
    out = run()
    inc = out["opened"][0]
    assert [(e["channel"], e["step"]) for e in out["notifications"]] == [("hook", 1), ("pd", 1), ("mail", 1)]
    assert run(action="escalate", now=at(14))["notifications"] == []
    assert [e["step"] for e in run(action="escalate", now=at(15))["notifications"]] == [2, 2]
    assert run(action="escalate", now=at(16))["notifications"] == []
    assert [e["to"] for e in run(action="escalate", now=at(30))["notifications"]] == ["dir@x.test"]
    acked = run(action="ack", by="alice", now=at(31))
    assert acked["incidents"][0]["status"] == "acknowledged"
    assert sorted((e["channel"], e["to"]) for e in acked["notifications"]) == [
        ("hook", None), ("mail", "dir@x.test"), ("mail", "lead@x.test"), ("mail", "oncall@x.test"), ("pd", None)]
    assert run(action="escalate", now=at(90))["notifications"] == []
    resolved = run(action="resolve", by="alice", now=at(95), run={"playbook": "restart_app", "run_dir": "/r"})
    pd = [b for u, b in run.sender.posts if u.endswith("/pd")]
    assert [(b["event_action"], b["dedup_key"]) for b in pd] == [("trigger", inc), ("acknowledge", inc),
                                                                 ("resolve", inc)]
    record = resolved["incidents"][0]
    assert record["resolution"]["playbook"] == "restart_app" and record["resolved_at"] == at(95)
    assert [e["step"] for e in record["escalation"]] == [1, 2, 3]


def test_p0_reaches_every_step_at_once_and_cto_without_address_is_recorded(run):
    out = run(severity="P0")
    assert sorted({e["step"] for e in out["notifications"]}) == [1, 2, 3, 4]
    cto = [e for e in out["notifications"] if e["step"] == 4]
    assert cto[0]["status"] == "skipped" and "hb_incident_contacts.cto.email" in cto[0]["reason"]


def test_second_detection_updates_and_raises_severity(run):
    first = run()["opened"][0]
    again = run(now=at(10), severity="P0")
    assert again["opened"] == [] and again["incidents"][0]["id"] == first
    assert again["incidents"][0]["severity"] == "P0"
    # P0 now: the remaining steps at once
    assert sorted({e["step"] for e in again["notifications"]}) == [2, 3, 4]


@pytest.mark.parametrize("change, opens_new", [
    ({"scenarios": [1]}, True),                 # another scenario
    ({"hosts": ["db-2"]}, True),                # other hosts
    ({"now": at(200)}, True),                   # outside the window
    ({"drill": True}, True),                    # a drill never updates a real incident
    ({"hosts": ["db-1", "app-1"]}, False),      # overlapping hosts
])
def test_what_is_a_duplicate(run, change, opens_new):
    run()
    out = run(**change)
    assert bool(out["opened"]) is opens_new


def test_below_threshold_opens_nothing(run, tmp_path):
    out = run(severity="P3")
    assert out["opened"] == [] and not os.path.exists(str(tmp_path / "incidents"))


def test_check_mode_writes_and_sends_nothing(run, tmp_path):
    out = run(check=True)
    assert out["changed"] and {e["status"] for e in out["notifications"]} == {"would_send"}
    assert run.sender.posts == [] and not os.path.exists(str(tmp_path / "incidents"))


def test_drill_goes_to_the_drill_channel_only_unless_drill_notify(run):
    out = run(drill=True, severity="P0")
    assert {e["channel"] for e in out["notifications"]} == {"drills"}
    assert all(u.endswith("/drill") for u, _b in run.sender.posts) and not run.sender.mails
    real = run(drill=True, drill_notify=True, scenarios=[3])
    assert {e["channel"] for e in real["notifications"]} == {"hook", "pd", "mail"}


def test_drill_without_drill_channel_notifies_nobody(run):
    out = run(drill=True, drill_channel="")
    assert [e["status"] for e in out["notifications"]] == ["skipped"] and run.sender.posts == []


def test_notifications_off_records_skips(run):
    out = run(notify=False)
    assert {e["status"] for e in out["notifications"]} == {"skipped"} and run.sender.posts == []


def test_retries_with_doubling_backoff_then_delivered(run):
    run.sender.script[SECRET_URL] = [500, 503]
    out = run()
    hook = [e for e in out["notifications"] if e["channel"] == "hook"][0]
    assert hook["status"] == "delivered" and [a["result"] for a in hook["attempts"]] == [
        "HTTP 500", "HTTP 503", "ok 200"]
    assert run.sleeps == [1.0, 2.0]


def test_failure_for_good_is_a_warning_with_no_secret_and_is_retried_next_escalate(run):
    run.sender.script[SECRET_URL] = [OSError("cannot reach %s" % SECRET_URL)] * 4
    run.sender.mail_error = OSError("auth failed for %s" % SMTP_PASSWORD)
    out = run()
    assert out["warnings"] and not any(SECRET_URL in w or SMTP_PASSWORD in w for w in out["warnings"])
    text = json.dumps(out)
    assert "s3cr3tT0ken" not in text and SMTP_PASSWORD not in text and PD_KEY not in text
    run.sender.mail_error = None
    again = run(action="escalate", now=at(1))
    assert {e["channel"]: e["status"] for e in again["notifications"]} == {"hook": "delivered", "mail": "delivered"}


def test_client_error_is_not_retried(run):
    run.sender.script[SECRET_URL] = [404]
    out = run()
    hook = [e for e in out["notifications"] if e["channel"] == "hook"][0]
    assert hook["status"] == "failed" and len(hook["attempts"]) == 1


def test_record_on_disk_has_no_secret(run, tmp_path):
    run(severity="P0")
    run(action="ack", by="bob", now=at(2))
    for name in os.listdir(str(tmp_path / "incidents")):
        with open(str(tmp_path / "incidents" / name), encoding="utf-8") as fh:
            data = fh.read()
        assert "s3cr3tT0ken" not in data and PD_KEY not in data and SMTP_PASSWORD not in data


@pytest.mark.parametrize("change, message", [
    ({"action": "nope"}, "action='nope'; valid: open, ack"),
    ({"severity": "P9"}, "severity='P9'; valid: P0, P1, P2, P3"),
    ({"now": "yesterday"}, "now='yesterday' is not an ISO-8601 time"),
    ({"action": "ack"}, "by is required"),
    ({"action": "ack", "by": "a", "id": "42"}, "id='42' is not an incident id"),
    ({"escalation": [{"step": 1, "after_minutes": "soon", "notify": ["oncall"]}]},
     "hb_incident_escalation[0].after_minutes='soon'"),
    ({"escalation": [{"step": 1, "after_minutes": 0, "notify": ["nobody"]}]},
     "hb_incident_escalation[0].notify names 'nobody'"),
    ({"contacts": {"x": {"channels": ["fax"]}}}, "hb_incident_contacts.x.channels names 'fax'"),
    ({"channels": [{"name": "m", "type": "email", "host": "h"}]}, "hb_incident_channels.m.from is required"),
    ({"channels": [{"name": "w", "type": "webhook", "url": "ftp://x"}]}, "hb_incident_channels.w.url must start"),
    ({"drill_channel": "pager"}, "hb_incident_drill_channel='pager' is not in hb_incident_channels"),
    ({"drill_channel": "mail"}, "set hb_incident_channels.mail.to"),
])
def test_bad_input_is_named_before_anything_changes(run, tmp_path, change, message):
    kw = dict(change)
    if "channels" in kw or "contacts" in kw:
        kw.setdefault("contacts", {})
        kw.setdefault("drill_channel", "")
        kw.setdefault("escalation", [{"step": 1, "after_minutes": 0, "notify": []}])
    with pytest.raises((rec.IncidentError, notify.ChannelError)) as exc:
        run(**kw)
    assert message in str(exc.value)
    assert not os.path.exists(str(tmp_path / "incidents" / "x")) and run.sender.posts == []


def test_ack_without_id_needs_a_single_active_incident(run):
    run()
    run(scenarios=[1], hosts=["app-1"])
    with pytest.raises(rec.IncidentError, match="id is required: 2 incidents are active"):
        run(action="ack", by="alice")


def test_payloads():
    record = {"id": "INC-20261202T000000Z-abcd", "severity": "P0", "hosts": ["app-1"], "scenarios": [1],
              "summary": "down", "labels": [], "detected_at": "2026-12-02T00:00:00Z"}
    pd = notify.payload({"type": "pagerduty", "routing_key": "k"}, record, "trigger", {"step": 1, "role": "on-call"})
    assert pd["event_action"] == "trigger" and pd["dedup_key"] == record["id"]
    assert pd["payload"]["severity"] == "critical" and pd["payload"]["source"] == "app-1"
    resolve = notify.payload({"type": "pagerduty", "routing_key": "k"}, record, "resolve")
    assert set(resolve) == {"routing_key", "event_action", "dedup_key"} and resolve["event_action"] == "resolve"
    assert set(notify.payload({"type": "slack"}, record, "trigger")) == {"text"}
    hook = notify.payload({"type": "webhook"}, record, "acknowledge")
    assert hook["event"] == "acknowledge" and hook["incident"]["id"] == record["id"]


def test_report_takes_times_and_notifications_from_the_incident(run, tmp_path):
    out = run(ref_dir=str(tmp_path / "run"))
    run(action="ack", by="alice", now=at(7))
    run(action="resolve", now=at(20), run={"playbook": "healthbutler.recovery.recover_db_connection"},
        ref_dir=str(tmp_path / "run"))
    with open(str(tmp_path / "run" / "timeline.jsonl"), "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"event": "task", "start": "2026-12-02T00:01:00Z", "end": "2026-12-02T00:02:00Z",
                             "status": "ok", "task": "t", "host": "db-1"}) + "\n")
    report = report_incident.build(report_incident.load_run(str(tmp_path / "run")))
    moments = {m["name"]: m["time"] for m in report["response"]["moments"]}
    assert moments["detect"] == at(0) and moments["respond"] == at(7) and moments["recover"] == at(20)
    assert report["response"]["incident"]["id"] == out["opened"][0]
    md = report_incident.render_markdown(report, "zh")
    assert "- **响应时间**: %s (alice)" % at(7) in md and "hook (slack)" in md
    assert "s3cr3tT0ken" not in md
