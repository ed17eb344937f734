# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Notification channels of an incident: a JSON webhook, a Slack-compatible webhook, the PagerDuty Events
API v2 and SMTP email, with the Python standard library and ansible-core only (open_url, smtplib, json).

A delivery is tried ``1 + retries`` times with a doubling backoff; every attempt is recorded. A delivery
that fails for good is returned as ``failed``: it never raises, so it can never fail a recovery.
Secrets (webhook URLs, routing keys, SMTP passwords) never appear in what is returned: error texts
are scrubbed of them.
"""

from __future__ import annotations

import json
import smtplib
import socket
import time
import urllib.error
from email.message import EmailMessage

from ansible.module_utils.urls import open_url

CHANNEL_TYPES = ("webhook", "slack", "pagerduty", "email")
SECRET_KEYS = ("url", "routing_key", "password")
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
PD_SEVERITY = {"P0": "critical", "P1": "error", "P2": "warning", "P3": "info"}
PD_ACTION = {"trigger": "trigger", "acknowledge": "acknowledge", "resolve": "resolve"}
MASK = "********"
# Keys a channel may have, per type (besides name and type); the first group is required.
CHANNEL_KEYS = {
    "webhook": (("url",), ("timeout", "headers")),
    "slack": (("url",), ("timeout",)),
    "pagerduty": (("routing_key",), ("url", "timeout")),
    "email": (("host", "from"), ("port", "username", "password", "starttls", "ssl", "timeout", "to")),
}


class ChannelError(ValueError):
    pass


def validate_channels(channels):
    """Check the site model's channels ({name: {type, ...}}); raise ChannelError naming the bad key."""
    if not isinstance(channels, dict):
        raise ChannelError("hb_incident_channels must be a mapping of channel name to settings, got %s"
                           % type(channels).__name__)
    for name, cfg in channels.items():
        where = "hb_incident_channels.%s" % name
        if not isinstance(cfg, dict):
            raise ChannelError("%s must be a mapping with a type (one of %s)" % (where, ", ".join(CHANNEL_TYPES)))
        kind = cfg.get("type")
        if kind not in CHANNEL_TYPES:
            raise ChannelError("%s.type is %r; valid: %s" % (where, kind, ", ".join(CHANNEL_TYPES)))
        required, optional = CHANNEL_KEYS[kind]
        for key in required:
            if cfg.get(key) in (None, ""):
                raise ChannelError("%s.%s is required for a %s channel" % (where, key, kind))
        unknown = sorted(set(cfg) - set(required) - set(optional) - {"type"})
        if unknown:
            raise ChannelError("%s: unknown key(s) %s; a %s channel takes %s" % (
                where, ", ".join(unknown), kind, ", ".join(("type",) + required + optional)))
        for key in ("url",):
            if cfg.get(key) and not str(cfg[key]).startswith(("http://", "https://")):
                raise ChannelError("%s.url must start with http:// or https://" % where)
    return True


def secrets_of(channels):
    """Every secret value of the channels (to scrub from texts and to hide from the console)."""
    found = []
    for cfg in (channels or {}).values():
        for key in SECRET_KEYS:
            value = (cfg or {}).get(key)
            if value:
                found.append(str(value))
    return found


def scrub(text, secrets):
    text = str(text)
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text


def subject(record, event):
    what = {"trigger": "%s incident" % record.get("severity"), "acknowledge": "acknowledged",
            "resolve": "resolved"}[event]
    drill = "[DRILL] " if "drill" in (record.get("labels") or []) else ""
    return "%s[%s] %s: %s" % (drill, record["id"], what, record.get("summary") or "incident")


def text_of(record, event, step=None, contacts=()):
    """A short plain text: what, which step, who is meant, what to run."""
    lines = [subject(record, event)]
    if step:
        lines.append("escalation step %s (%s) after %s min" % (step["step"], step.get("role", ""),
                                                               step.get("after_minutes", 0)))
    if contacts:
        lines.append("for: " + ", ".join("%s <%s>" % (c.get("role") or c["name"], c.get("email") or c["name"])
                                         for c in contacts))
    lines.append("hosts: %s; scenarios: %s; detected %s" % (", ".join(record.get("hosts") or []) or "-",
                                                            ", ".join(str(s) for s in record.get("scenarios") or [])
                                                            or "-", record.get("detected_at")))
    if event == "trigger":
        lines.append("acknowledge: ansible-playbook healthbutler.recovery.incident -e action=ack -e id=%s -e by=<you>"
                     % record["id"])
    if event == "acknowledge":
        lines.append("acknowledged by %s at %s" % (record.get("acknowledged_by"), record.get("acknowledged_at")))
    if event == "resolve":
        lines.append("resolved at %s by %s" % (record.get("resolved_at"),
                                               (record.get("resolution") or {}).get("playbook") or
                                               record.get("resolved_by")))
    if record.get("next_step"):
        lines.append("next: %s" % record["next_step"])
    return "\n".join(lines)


def _summary_record(record):
    keys = ("id", "status", "severity", "scenarios", "hosts", "summary", "labels", "detected_at",
            "acknowledged_at", "acknowledged_by", "resolved_at", "next_step")
    return {k: record.get(k) for k in keys}


def payload(cfg, record, event, step=None, contacts=()):
    """The JSON body one channel gets for an event (trigger, acknowledge, resolve)."""
    kind = cfg["type"]
    text = text_of(record, event, step, contacts)
    if kind == "slack":
        return {"text": text}
    if kind == "pagerduty":
        body = {"routing_key": cfg["routing_key"], "event_action": PD_ACTION[event], "dedup_key": record["id"]}
        if event == "trigger":
            body["payload"] = {
                "summary": subject(record, event)[:1024], "source": ",".join(record.get("hosts") or []) or "controller",
                "severity": PD_SEVERITY.get(record.get("severity"), "error"), "component": "health-butler",
                "class": "scenario %s" % ",".join(str(s) for s in record.get("scenarios") or []),
                "custom_details": {"step": (step or {}).get("step"), "role": (step or {}).get("role"),
                                   "contacts": [c.get("email") or c["name"] for c in contacts],
                                   "labels": record.get("labels") or [], "next_step": record.get("next_step")}}
        return body
    return {"event": event, "incident": _summary_record(record), "step": step,
            "contacts": [{"name": c["name"], "role": c.get("role"), "email": c.get("email")} for c in contacts],
            "text": text}


class Sender:
    """The real transports (the unit tests give a fake with the same two methods)."""

    def post_json(self, url, body, timeout, headers=None):
        """POST ``body`` as JSON; return the HTTP status (raises OSError/URLError on a transport failure)."""
        data = json.dumps(body).encode("utf-8")
        try:
            with open_url(url, data=data, method="POST", timeout=timeout, http_agent="healthbutler.recovery",
                          headers=dict({"Content-Type": "application/json"}, **(headers or {}))) as resp:
                resp.read(4096)
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def send_mail(self, cfg, to, subject_line, text, timeout):
        msg = EmailMessage()
        msg["From"] = cfg["from"]
        msg["To"] = to
        msg["Subject"] = subject_line
        msg.set_content(text)
        port = int(cfg.get("port") or (465 if cfg.get("ssl") else 25))
        klass = smtplib.SMTP_SSL if cfg.get("ssl") else smtplib.SMTP
        with klass(cfg["host"], port, timeout=timeout) as smtp:
            if cfg.get("starttls"):
                smtp.starttls()
            if cfg.get("username"):
                smtp.login(cfg["username"], cfg.get("password") or "")
            smtp.send_message(msg)
        return 250


def _clock_ms():
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % int(now % 1 * 1000)


def _retryable(status):
    return status == 429 or status >= 500


def deliver(cfg, send, retries=3, backoff_s=1.0, timeout_s=10, sleep=time.sleep, clock=None, secrets=()):
    """Run ``send()`` (returns a status) until it succeeds, retrying transport errors, 429 and 5xx.

    Returns {status: delivered|failed, attempts: [{time, result}], delivered_at}.
    """
    clock = clock or _clock_ms
    attempts = []
    delay = float(backoff_s)
    for attempt in range(int(retries) + 1):
        when = clock()
        try:
            status = int(send())
            ok = 200 <= status < 300 or (cfg["type"] == "email" and status == 250)
            attempts.append({"time": when, "result": ("ok %s" % status) if ok else ("HTTP %s" % status)})
            if ok:
                return {"status": "delivered", "attempts": attempts, "delivered_at": when}
            if not _retryable(status):
                break
        except (OSError, smtplib.SMTPException, socket.timeout, ValueError) as exc:
            attempts.append({"time": when, "result": scrub("%s: %s" % (type(exc).__name__, exc), secrets)[:300]})
        if attempt < int(retries):
            sleep(delay)
            delay *= 2
    return {"status": "failed", "attempts": attempts, "delivered_at": None}


def sender_for(cfg, record, event, step, contacts, to, sender, timeout_s):
    """A zero-argument callable doing one attempt of this delivery."""
    kind = cfg["type"]
    timeout = float(cfg.get("timeout") or timeout_s)
    if kind == "email":
        return lambda: sender.send_mail(cfg, to, subject(record, event), text_of(record, event, step, contacts),
                                        timeout)
    url = cfg.get("url") or (PAGERDUTY_URL if kind == "pagerduty" else None)
    body = payload(cfg, record, event, step, contacts)
    return lambda: sender.post_json(url, body, timeout, cfg.get("headers"))
