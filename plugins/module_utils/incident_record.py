# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Incident records with a lifecycle: open -> acknowledged -> resolved, one JSON file per incident.

The records live in ``<run root>/incidents/<id>.json`` on the controller. They keep the times of
detection, acknowledgement and resolution, the escalation steps reached (升级路径) and every
notification with its attempts. A lock file serialises writers (a cron ``escalate`` every minute and
a diagnosis may run at once). The escalation path and the contacts come from the site model.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets as _random
from datetime import datetime, timezone

from ansible_collections.healthbutler.recovery.plugins.module_utils import incident_notify as notify
from ansible_collections.healthbutler.recovery.plugins.module_utils.incident_policy import (
    ESCALATION_PATH,
    SEVERITIES,
    severity_rank,
)

ACTIONS = ("open", "ack", "resolve", "escalate", "show")
ACTIVE = ("open", "acknowledged")
_ID = re.compile(r"^INC-\d{8}T\d{6}Z-[0-9a-f]{4}$")


class IncidentError(ValueError):
    pass


def parse_time(text):
    """An aware UTC datetime from ISO-8601 (``Z`` or an offset; naive means UTC)."""
    if isinstance(text, datetime):
        value = text
    else:
        raw = str(text).strip()
        try:
            value = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith("Z") else raw)
        except ValueError as exc:
            raise IncidentError("now=%r is not an ISO-8601 time (valid: 2026-12-02T01:00:00Z)" % text) from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def iso(value):
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def minutes_between(start, end):
    return (parse_time(end) - parse_time(start)).total_seconds() / 60.0


def new_id(now):
    return "INC-%s-%s" % (now.strftime("%Y%m%dT%H%M%SZ"), _random.token_hex(2))


def default_steps():
    """The runbook's 升级路径 as site-model steps (what roles/hb/defaults sets)."""
    names = ("oncall", "team_lead", "tech_director", "cto")
    return [{"step": s["step"], "role": s["role"], "after_minutes": start, "notify": [names[i]]}
            for i, (start, _end, s) in enumerate(ESCALATION_PATH)]


def check_severity(value, name="severity"):
    if value not in SEVERITIES:
        raise IncidentError("%s=%r; valid: %s" % (name, value, ", ".join(SEVERITIES)))
    return value


def validate_config(steps, contacts, channels, drill_channel=""):
    """Check the site model's escalation steps, contacts and channels; errors name the variable."""
    notify.validate_channels(channels)
    if not isinstance(contacts, dict):
        raise IncidentError("hb_incident_contacts must be a mapping of contact name to {role, email, channels}")
    for name, contact in contacts.items():
        if not isinstance(contact, dict):
            raise IncidentError("hb_incident_contacts.%s must be a mapping {role, email, channels}" % name)
        for channel in contact.get("channels") or []:
            if channel not in channels:
                raise IncidentError("hb_incident_contacts.%s.channels names %r, which is not in hb_incident_channels"
                                    " (known: %s)" % (name, channel, ", ".join(sorted(channels)) or "none"))
    if not isinstance(steps, list) or not steps:
        raise IncidentError("hb_incident_escalation must be a non-empty list of {step, after_minutes, notify}")
    out, seen = [], set()
    for i, step in enumerate(steps):
        where = "hb_incident_escalation[%d]" % i
        if not isinstance(step, dict):
            raise IncidentError("%s must be a mapping {step, after_minutes, notify}" % where)
        try:
            after = float(step.get("after_minutes"))
        except (TypeError, ValueError):
            raise IncidentError("%s.after_minutes=%r; valid: minutes since detection, a number >= 0"
                                % (where, step.get("after_minutes"))) from None
        if after < 0:
            raise IncidentError("%s.after_minutes=%r; valid: a number >= 0" % (where, step.get("after_minutes")))
        number = step.get("step", i + 1)
        if number in seen:
            raise IncidentError("%s.step=%r appears twice" % (where, number))
        seen.add(number)
        names = step.get("notify") or []
        for name in names:
            if name not in contacts:
                raise IncidentError("%s.notify names %r, which is not in hb_incident_contacts (known: %s)"
                                    % (where, name, ", ".join(sorted(contacts))))
        role = step.get("role") or ", ".join(contacts[n].get("role") or n for n in names)
        out.append({"step": number, "role": role, "after_minutes": after, "notify": list(names)})
    if drill_channel and drill_channel not in channels:
        raise IncidentError("hb_incident_drill_channel=%r is not in hb_incident_channels (known: %s)"
                            % (drill_channel, ", ".join(sorted(channels)) or "none"))
    if drill_channel and channels[drill_channel]["type"] == "email" and not channels[drill_channel].get("to"):
        raise IncidentError("hb_incident_drill_channel=%r is an email channel without a fixed recipient: set "
                            "hb_incident_channels.%s.to (the drill mailbox)" % (drill_channel, drill_channel))
    return sorted(out, key=lambda s: (s["after_minutes"], s["step"]))


class Store:
    """The incidents directory: one ``<id>.json`` per incident, written atomically under a lock."""

    def __init__(self, root):
        if not root:
            raise IncidentError("incident_dir is empty (set hb_incident_dir or hb_controller_run_root)")
        self.root = root

    @contextlib.contextmanager
    def locked(self, create=True):
        if create:
            os.makedirs(self.root, mode=0o750, exist_ok=True)
        elif not os.path.isdir(self.root):
            yield self
            return
        with open(os.path.join(self.root, ".lock"), "a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def path(self, incident_id):
        return os.path.join(self.root, "%s.json" % incident_id)

    def load(self, incident_id):
        if not _ID.match(str(incident_id)):
            raise IncidentError("id=%r is not an incident id (valid: INC-20261202T010000Z-ab12)" % incident_id)
        try:
            with open(self.path(incident_id), encoding="utf-8") as fh:
                return json.load(fh)
        except FileNotFoundError:
            raise IncidentError("id=%s: no such incident under %s" % (incident_id, self.root)) from None

    def records(self):
        if not os.path.isdir(self.root):
            return []
        out = []
        for name in sorted(os.listdir(self.root)):
            if name.endswith(".json") and _ID.match(name[:-5]):
                with open(os.path.join(self.root, name), encoding="utf-8") as fh:
                    out.append(json.load(fh))
        return out

    def save(self, record):
        os.makedirs(self.root, mode=0o750, exist_ok=True)
        tmp = self.path(record["id"]) + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=1, sort_keys=True, ensure_ascii=False)
            fh.write("\n")
        os.chmod(tmp, 0o640)
        os.replace(tmp, self.path(record["id"]))
        return self.path(record["id"])


def is_drill(record):
    return "drill" in (record.get("labels") or [])


def _event(record, now, event, detail=""):
    record.setdefault("history", []).append({"time": iso(now), "event": event, "detail": detail})
    record["updated_at"] = iso(now)


def find_duplicate(records, scenarios, hosts, drill, now, window_minutes):
    """The active incident a new detection belongs to: same first scenario, overlapping hosts, same drill
    label, and updated within ``window_minutes``."""
    first = (list(scenarios) or [None])[0]
    for rec in sorted(records, key=lambda r: r.get("updated_at") or "", reverse=True):
        if rec.get("status") not in ACTIVE or is_drill(rec) != bool(drill):
            continue
        if (rec.get("scenarios") or [None])[0] != first:
            continue
        if hosts and rec.get("hosts") and not set(hosts) & set(rec["hosts"]):
            continue
        if minutes_between(rec.get("updated_at") or rec["opened_at"], now) > float(window_minutes):
            continue
        return rec
    return None


def open_or_update(store, now, severity, scenarios, hosts, summary="", labels=(), source=None,
                   window_minutes=120, next_step=None):
    """Open a new incident, or update the active one of the same scenario and hosts. Returns (record, opened)."""
    check_severity(severity)
    labels = sorted(set(labels or ()))
    scenarios = list(scenarios or [])
    hosts = sorted(set(hosts or []))
    source = dict(source or {}, time=iso(now), severity=severity)
    found = find_duplicate(store.records(), scenarios, hosts, "drill" in labels, now, window_minutes)
    if found:
        found.setdefault("sources", []).append(source)
        detail = "seen again (%s)" % severity
        if severity_rank(severity) < severity_rank(found["severity"]):
            detail = "severity %s -> %s" % (found["severity"], severity)
            found["severity"] = severity
        found["hosts"] = sorted(set(found.get("hosts") or []) | set(hosts))
        found["scenarios"] = found.get("scenarios") or scenarios
        if next_step:
            found["next_step"] = next_step
        _event(found, now, "updated", detail)
        return found, False
    record = {
        "id": new_id(now), "status": "open", "severity": severity, "scenarios": scenarios, "hosts": hosts,
        "summary": summary or "", "labels": labels, "next_step": next_step,
        "detected_at": iso(now), "opened_at": iso(now), "updated_at": iso(now),
        "acknowledged_at": None, "acknowledged_by": None, "resolved_at": None, "resolved_by": None,
        "resolution": None, "sources": [source], "escalation": [], "notifications": [], "history": [],
    }
    _event(record, now, "opened", "%s %s" % (severity, summary or ""))
    return record, True


def due_steps(record, steps, now):
    """Steps not yet reached whose time has come (every step at once for a P0); none unless open."""
    if record.get("status") != "open":
        return []
    reached = {e["step"] for e in record.get("escalation") or []}
    elapsed = minutes_between(record["detected_at"], now)
    p0 = record.get("severity") == "P0"
    return [s for s in steps if s["step"] not in reached and (p0 or elapsed >= s["after_minutes"])]


class Notifier:
    """Sends an incident's events to its channels and writes each delivery into the record."""

    def __init__(self, contacts, channels, drill_channel="", drill_notify=False, retries=3, backoff_s=1.0,
                 timeout_s=10, sender=None, sleep=None, clock=None, enabled=True):
        self.contacts, self.channels, self.enabled = contacts, channels, bool(enabled)
        self.drill_channel, self.drill_notify = drill_channel, bool(drill_notify)
        self.retries, self.backoff_s, self.timeout_s = int(retries), float(backoff_s), float(timeout_s)
        self.sender = sender or notify.Sender()
        self.sleep, self.clock = sleep, clock
        self.secrets = notify.secrets_of(channels)

    def _targets(self, record, step):
        """(channel name, to, contacts, reason) of one step."""
        contacts = [dict(self.contacts[n], name=n) for n in step["notify"]]
        if not self.enabled:
            return [(None, None, contacts, "notifications are off (hb_incident_notify=false)")]
        if is_drill(record) and not self.drill_notify:
            if not self.drill_channel:
                return [(None, None, contacts, "drill: no hb_incident_drill_channel, real contacts not notified")]
            cfg = self.channels[self.drill_channel]
            return [(self.drill_channel, cfg.get("to") if cfg["type"] == "email" else None, contacts, "")]
        targets, seen = [], set()
        for contact in contacts:
            names = contact.get("channels") or []
            if not names:
                targets.append((None, None, [contact], "hb_incident_contacts.%s has no channels" % contact["name"]))
            for name in names:
                cfg = self.channels[name]
                if cfg["type"] == "email":
                    to = cfg.get("to") or contact.get("email")
                    if not to:
                        targets.append((name, None, [contact], "no address: set hb_incident_contacts.%s.email"
                                        % contact["name"]))
                        continue
                    key = (name, to)
                else:
                    key, to = (name, None), None
                if key in seen:
                    continue
                seen.add(key)
                targets.append((name, to, [c for c in contacts if name in (c.get("channels") or [])]
                                if to is None else [contact], ""))
        return targets

    def _send(self, record, event, step, name, to, contacts):
        cfg = self.channels[name]
        send = notify.sender_for(cfg, record, event, step, contacts, to, self.sender, self.timeout_s)
        kwargs = {"sleep": self.sleep} if self.sleep else {}
        return notify.deliver(cfg, send, retries=self.retries, backoff_s=self.backoff_s, timeout_s=self.timeout_s,
                              clock=self.clock, secrets=self.secrets, **kwargs)

    def _entry(self, now, event, step, name, to, contacts):
        return {"time": iso(now), "event": event, "step": (step or {}).get("step"), "role": (step or {}).get("role"),
                "contacts": [c["name"] for c in contacts], "channel": name,
                "type": self.channels[name]["type"] if name else None, "to": to}

    def step(self, record, step, now, check=False):
        """Notify one escalation step (a trigger); returns the new notification entries."""
        out = []
        for name, to, contacts, reason in self._targets(record, step):
            entry = self._entry(now, "trigger", step, name, to, contacts)
            if reason:
                entry.update(status="skipped", reason=reason, attempts=[])
            elif check:
                entry.update(status="would_send", attempts=[])
            else:
                entry.update(self._send(record, "trigger", step, name, to, contacts))
            out.append(entry)
        if not check:
            record.setdefault("notifications", []).extend(out)
        return out

    def follow_up(self, record, event, now, check=False):
        """acknowledge/resolve to every channel (and address) that got a trigger."""
        out, told = [], {}
        for prev in record.get("notifications") or []:
            if prev["event"] != "trigger" or prev["status"] not in ("delivered", "failed") or not prev["channel"]:
                continue
            if prev["channel"] in self.channels:
                names = told.setdefault((prev["channel"], prev.get("to")), [])
                names += [n for n in prev.get("contacts") or [] if n not in names]
        for (channel, to), names in told.items():
            prev = {"channel": channel, "to": to}
            contacts = [dict(self.contacts.get(n, {}), name=n) for n in names]
            entry = self._entry(now, event, None, prev["channel"], prev.get("to"), contacts)
            if check:
                entry.update(status="would_send", attempts=[])
            else:
                entry.update(self._send(record, event, None, prev["channel"], prev.get("to"), contacts))
            out.append(entry)
        if not check:
            record.setdefault("notifications", []).extend(out)
        return out

    def redeliver(self, record, now, check=False):
        """Try again every trigger that failed for good in an earlier run (while the incident is open)."""
        out = []
        if record.get("status") != "open" or check:
            return out
        for prev in record.get("notifications") or []:
            if prev["event"] == "trigger" and prev["status"] == "failed" and prev["channel"] in self.channels:
                contacts = [dict(self.contacts.get(n, {}), name=n) for n in prev.get("contacts") or []]
                step = {"step": prev.get("step"), "role": prev.get("role"), "after_minutes": None}
                got = self._send(record, "trigger", step, prev["channel"], prev.get("to"), contacts)
                prev["attempts"] = prev.get("attempts", []) + got["attempts"]
                prev["status"], prev["delivered_at"] = got["status"], got["delivered_at"]
                out.append(prev)
        return out


def escalate(record, steps, notifier, now, check=False):
    """Notify each due step once, in order; returns the deliveries made."""
    sent = notifier.redeliver(record, now, check)
    for step in due_steps(record, steps, now):
        why = "P0: every step at once" if record.get("severity") == "P0" and \
            minutes_between(record["detected_at"], now) < step["after_minutes"] else "elapsed time"
        if not check:
            record.setdefault("escalation", []).append({"step": step["step"], "role": step["role"],
                                                        "after_minutes": step["after_minutes"],
                                                        "reached_at": iso(now), "why": why})
            _event(record, now, "escalated", "step %s (%s): %s" % (step["step"], step["role"], why))
        sent += notifier.step(record, step, now, check)
    return sent


def acknowledge(record, by, now, notifier, check=False):
    """Take the incident: escalation stops; the channels notified so far get an acknowledge."""
    if not by:
        raise IncidentError("by is required: who takes the incident (e.g. -e by=alice)")
    if record["status"] != "open":
        return []
    if not check:
        record.update(status="acknowledged", acknowledged_at=iso(now), acknowledged_by=str(by))
        _event(record, now, "acknowledged", "by %s" % by)
    return notifier.follow_up(record, "acknowledge", now, check)


def resolve(record, now, notifier, run=None, by=None, check=False):
    """Close the incident (a recovery run whose verification was green, or a person); sends a resolve."""
    if record["status"] == "resolved":
        return []
    run = {k: v for k, v in (run or {}).items() if v not in (None, "")}
    if not check:
        record.update(status="resolved", resolved_at=iso(now), resolved_by=str(by or run.get("playbook") or "hand"),
                      resolution=dict(run, time=iso(now)))
        _event(record, now, "resolved", "by %s" % record["resolved_by"])
    return notifier.follow_up(record, "resolve", now, check)


def active_for(records, hosts=None, drill=False):
    """The active incidents a recovery of ``hosts`` resolves (drill runs resolve drill incidents only)."""
    out = []
    for rec in records:
        if rec.get("status") not in ACTIVE or is_drill(rec) != bool(drill):
            continue
        if hosts and rec.get("hosts") and not set(hosts) & set(rec["hosts"]):
            continue
        out.append(rec)
    return out


def summary_line(record):
    reached = ",".join(str(e["step"]) for e in record.get("escalation") or []) or "-"
    return "%s %s %s%s: %s (steps reached %s)" % (
        record["id"], record["status"], record["severity"], " [drill]" if is_drill(record) else "",
        record.get("summary") or "-", reached)


def delivery_line(entry):
    who = ",".join(entry.get("contacts") or []) or "-"
    tries = len(entry.get("attempts") or [])
    return "%s step %s -> %s via %s%s: %s%s" % (
        entry["event"], entry.get("step") or "-", who, entry.get("channel") or "-",
        " <%s>" % entry["to"] if entry.get("to") else "", entry["status"],
        " after %d attempt(s)" % tries if tries > 1 else "") + (
        " (%s)" % entry["reason"] if entry.get("reason") else "")
