"""Incidents that reach people: real playbook runs on the controller against real local receivers
(http.server for the webhook, Slack and PagerDuty payloads; aiosmtpd for email). The clock is moved with
HB_INCIDENT_NOW (tests only); the escalation path is the runbook's (0, 15, 30, 60 minutes)."""

from __future__ import annotations

import glob
import json
import os
import secrets

import pytest
from incident_helpers import HttpReceiver, SmtpReceiver, ansible_playbook, files_containing, write_site

T0 = "2026-12-02T00:00:00Z"


def at(minutes):
    return "2026-12-02T%02d:%02d:00Z" % (minutes // 60, minutes % 60)


class Site:
    def __init__(self, base):
        self.base = base
        self.token = {"hook": "hk-" + secrets.token_hex(8), "slack": "T0-" + secrets.token_hex(8),
                      "drill": "dr-" + secrets.token_hex(8)}
        self.pd_key = "pdkey" + secrets.token_hex(10)
        self.smtp_password = "smtp-" + secrets.token_hex(10)
        self.http = HttpReceiver()
        self.smtp = SmtpReceiver(self.smtp_password)
        self.hook_path, self.slack_path = "/hook/" + self.token["hook"], "/slack/" + self.token["slack"]
        self.drill_path = "/drill/" + self.token["drill"]
        self.secret_values = {"vault_hook_url": self.http.url(self.hook_path),
                              "vault_slack_url": self.http.url(self.slack_path),
                              "vault_drill_url": self.http.url(self.drill_path),
                              "vault_pd_key": self.pd_key, "vault_smtp_password": self.smtp_password}
        self.inv, self.vault_pass = write_site(base, self.http, self.smtp, self.secret_values)
        self.consoles, self.runs = [], 0

    @property
    def secrets(self):
        return [self.token["hook"], self.token["slack"], self.token["drill"], self.pd_key, self.smtp_password]

    def incident(self, now=None, **extra):
        self.runs += 1
        rc, console = ansible_playbook(self.inv, self.vault_pass, "incident.yml", extra,
                                       os.path.join(self.base, "runs", "run-%02d" % self.runs), now=now)
        self.consoles.append(console)
        return rc, console

    def ok(self, now=None, **extra):
        rc, console = self.incident(now, **extra)
        assert rc == 0, console[-3000:]
        return console

    def record(self, incident_id):
        with open(os.path.join(self.base, "runs", "incidents", incident_id + ".json"), encoding="utf-8") as fh:
            return json.load(fh)

    def only_id(self):
        ids = [os.path.basename(p)[:-5] for p in glob.glob(os.path.join(self.base, "runs", "incidents", "INC-*.json"))]
        assert len(ids) == 1, ids
        return ids[0]

    def hook_steps(self, event="trigger"):
        return [(b["step"] or {}).get("step") for b in self.http.accepted(self.hook_path) if b["event"] == event]

    def assert_no_secret_anywhere(self):
        leaks = files_containing(os.path.join(self.base, "runs"), self.secrets)
        leaks += ["console: %s" % s[:6] for s in self.secrets for c in self.consoles if s in c]
        assert not leaks, leaks

    def stop(self):
        self.http.stop()
        self.smtp.stop()


@pytest.fixture
def site(tmp_path):
    box = Site(str(tmp_path))
    yield box
    box.stop()


def test_p1_walks_the_escalation_path_once_per_step_stops_at_ack_and_resolves(site):
    site.ok(T0, action="open", severity="P1", scenario=2, host="db-1", summary="PostgreSQL refuses connections")
    inc = site.only_id()
    # t=0: step 1 only, on every channel of the on-call engineer
    assert site.hook_steps() == [1]
    assert [b["text"].splitlines()[0] for b in site.http.accepted(site.slack_path)] == [
        "[%s] P1 incident: PostgreSQL refuses connections" % inc]
    pd = site.http.accepted("/pd/enqueue")
    assert [(b["event_action"], b["dedup_key"], b["routing_key"] == site.pd_key) for b in pd] == [
        ("trigger", inc, True)]
    assert pd[0]["payload"]["severity"] == "error" and pd[0]["payload"]["source"] == "db-1"
    assert [m["to"] for m in site.smtp.messages] == [["ops-oncall@healthbutler.test"]]
    assert site.smtp.logins == [True]

    # a second detection of the same scenario on the same host updates it: no duplicate, nobody told twice
    site.ok(at(5), action="open", severity="P1", scenario=2, host="db-1", summary="PostgreSQL refuses connections")
    assert site.only_id() == inc and site.hook_steps() == [1]
    assert len(site.record(inc)["sources"]) == 2

    site.ok(at(14), action="escalate")
    assert site.hook_steps() == [1]
    site.ok(at(15), action="escalate")
    assert site.hook_steps() == [1, 2]
    assert [m["to"] for m in site.smtp.messages][-1] == ["ops-manager@healthbutler.test"]
    site.ok(at(29), action="escalate")
    assert site.hook_steps() == [1, 2]
    site.ok(at(30), action="escalate")
    assert site.hook_steps() == [1, 2, 3]
    site.ok(at(31), action="escalate")
    assert site.hook_steps() == [1, 2, 3]

    site.ok(at(33), action="ack", by="alice")
    rec = site.record(inc)
    assert rec["status"] == "acknowledged" and rec["acknowledged_by"] == "alice"
    assert rec["acknowledged_at"] == at(33) and rec["detected_at"] == T0
    assert [e["step"] for e in rec["escalation"]] == [1, 2, 3]
    assert [b["event_action"] for b in site.http.accepted("/pd/enqueue")] == ["trigger", "acknowledge"]
    # every address that was told gets the acknowledgement
    assert {m["to"][0] for m in site.smtp.messages[-3:]} == {
        "ops-oncall@healthbutler.test", "ops-manager@healthbutler.test", "tech-lead@healthbutler.test"}

    mails, hooks = len(site.smtp.messages), len(site.http.requests)
    site.ok(at(61), action="escalate")  # step 4's time has come, but the incident is taken
    assert len(site.smtp.messages) == mails and len(site.http.requests) == hooks  # after the ack, nothing more
    assert not site.smtp.to("cto@healthbutler.test")

    site.ok(at(95), action="resolve", by="alice")
    pd = site.http.accepted("/pd/enqueue")
    assert [(b["event_action"], b["dedup_key"]) for b in pd] == [
        ("trigger", inc), ("acknowledge", inc), ("resolve", inc)]
    rec = site.record(inc)
    assert rec["status"] == "resolved" and rec["resolved_at"] == at(95) and rec["resolved_by"] == "alice"
    assert site.hook_steps("resolve") == [None]  # one resolve per channel
    site.assert_no_secret_anywhere()


def test_p0_reaches_every_step_at_once(site):
    site.ok(T0, action="open", severity="P0", scenario=1, host="app-1", summary="the app does not answer")
    assert site.hook_steps() == [1, 2, 3, 4]
    assert sorted(m["to"][0] for m in site.smtp.messages) == sorted([
        "ops-oncall@healthbutler.test", "ops-manager@healthbutler.test", "tech-lead@healthbutler.test",
        "cto@healthbutler.test"])
    assert site.http.accepted("/pd/enqueue")[0]["payload"]["severity"] == "critical"
    before = len(site.http.requests)
    site.ok(at(70), action="escalate")
    assert len(site.http.requests) == before  # each step once
    rec = site.record(site.only_id())
    assert [e["why"] for e in rec["escalation"]] == ["elapsed time"] + ["P0: every step at once"] * 3
    site.assert_no_secret_anywhere()


def test_receiver_failing_twice_gets_the_message_once_and_the_record_shows_the_retries(site):
    site.http.fail[site.hook_path] = [500, 500]
    console = site.ok(T0, action="open", severity="P2", scenario=4, host="db-1", summary="locks waiting")
    assert [r["status"] for r in site.http.requests if r["path"] == site.hook_path] == [500, 500, 200]
    assert len(site.http.accepted(site.hook_path)) == 1
    hook = [n for n in site.record(site.only_id())["notifications"] if n["channel"] == "hook"]
    assert len(hook) == 1 and hook[0]["status"] == "delivered"
    assert [a["result"] for a in hook[0]["attempts"]] == ["HTTP 500", "HTTP 500", "ok 200"]
    assert "via hook: delivered after 3 attempt(s)" in console

    # a receiver that never answers: recorded as failed, a warning, and the run still succeeds
    site.http.fail[site.slack_path] = [503] * 10
    site.ok(at(1), action="open", severity="P1", scenario=1, host="app-9", summary="5xx")
    second = glob.glob(os.path.join(site.base, "runs", "incidents", "INC-*.json"))
    assert len(second) == 2
    assert "slack failed after 4 attempt(s): HTTP 503" in site.consoles[-1]
    site.assert_no_secret_anywhere()


def test_below_threshold_bad_input_and_drill_label(site):
    site.ok(T0, action="open", severity="P3", scenario=4, host="db-1", summary="slow")
    assert not glob.glob(os.path.join(site.base, "runs", "incidents", "INC-*.json")) and not site.http.requests
    rc, console = site.incident(T0, action="open", severity="P7", scenario=1)
    assert rc != 0 and "severity" in console and "P0, P1, P2, P3" in console
    # a drill incident goes to the drill channel only, never to the real contacts
    site.ok(T0, action="open", severity="P0", scenario=1, host="app-1", summary="drill", drill=True)
    assert not site.http.accepted(site.hook_path) and not site.smtp.messages
    assert [b["incident"]["labels"] for b in site.http.accepted(site.drill_path)] == [["drill"]] * 4
    rc, console = site.incident(T0, action="ack")
    assert rc != 0 and "by is required" in console
    site.assert_no_secret_anywhere()
