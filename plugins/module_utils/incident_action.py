# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""One action on the incident records (open, ack, resolve, escalate, show), as the incident module runs it.

Everything is checked before the first write: the site model (steps, contacts, channels), the action's
inputs, the clock. ``run`` returns what the module returns; it raises IncidentError on bad input only.
Delivery failures are recorded in the incident and reported as warnings, never raised.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone

from ansible_collections.healthbutler.recovery.plugins.module_utils import incident_notify as notify
from ansible_collections.healthbutler.recovery.plugins.module_utils import incident_record as rec
from ansible_collections.healthbutler.recovery.plugins.module_utils.incident_policy import severity_rank

REF_FILE = "incident.json"


def channels_by_name(channel_list):
    """The module's channel list (Ansible fills absent keys with None) back into {name: settings}."""
    out = {}
    for item in channel_list or []:
        cfg = {k: v for k, v in item.items() if v is not None and k != "name"}
        out[item["name"]] = cfg
    return out


def write_ref(run_dir, incident_dir, records, role):
    """A pointer from a run directory to the incidents it opened, updated or resolved (for the report)."""
    if not run_dir or not records:
        return None
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, REF_FILE)
    old = {}
    try:
        with open(path, encoding="utf-8") as fh:
            old = json.load(fh)
    except (OSError, ValueError):
        old = {}
    refs = {r["id"]: r for r in old.get("incidents", [])}
    for record in records:
        refs.setdefault(record["id"], {"id": record["id"], "path": os.path.join(incident_dir, record["id"] + ".json"),
                                       "roles": []})
        if role not in refs[record["id"]]["roles"]:
            refs[record["id"]]["roles"].append(role)
        refs[record["id"]]["snapshot"] = record
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"incidents": list(refs.values())}, fh, indent=1, sort_keys=True, ensure_ascii=False)
    return path


def _pick(store, incident_id, drill=None):
    if incident_id:
        return [store.load(incident_id)]
    active = [r for r in store.records() if r.get("status") in rec.ACTIVE
              and (drill is None or rec.is_drill(r) == bool(drill))]
    if len(active) > 1:
        raise rec.IncidentError("id is required: %d incidents are active (%s)" % (
            len(active), ", ".join(r["id"] for r in active)))
    if not active:
        raise rec.IncidentError("no active incident under %s (give id=INC-...)" % store.root)
    return active


def _differs(store, record):
    try:
        with open(store.path(record["id"]), encoding="utf-8") as fh:
            return json.load(fh) != json.loads(json.dumps(record))
    except (OSError, ValueError):
        return True


def run(p, sender=None, sleep=None, clock=None, check=False):
    """Do ``p['action']``; returns {changed, incidents, notifications, lines, warnings, opened}."""
    action = p["action"]
    if action not in rec.ACTIONS:
        raise rec.IncidentError("action=%r; valid: %s" % (action, ", ".join(rec.ACTIONS)))
    now = rec.parse_time(p["now"]) if p.get("now") else datetime.now(timezone.utc)
    if clock is None:  # attempt times follow the same clock as the record (a moved clock in tests)
        started = time.monotonic()

        def clock():
            moment = now + timedelta(seconds=time.monotonic() - started)
            return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)
    channels = channels_by_name(p.get("channels"))
    contacts = p.get("contacts") or {}
    steps = rec.validate_config(p.get("escalation") or rec.default_steps(), contacts, channels,
                                p.get("drill_channel") or "")
    notifier = rec.Notifier(contacts, channels, p.get("drill_channel") or "", p.get("drill_notify"),
                            retries=p.get("retries", 3), backoff_s=p.get("backoff_s", 1.0),
                            timeout_s=p.get("timeout_s", 10), sender=sender, sleep=sleep, clock=clock,
                            enabled=p.get("notify", True))
    store = rec.Store(p["incident_dir"])
    out = {"changed": False, "incidents": [], "notifications": [], "opened": [], "lines": [], "warnings": []}
    labels = sorted(set(p.get("labels") or []) | ({"drill"} if p.get("drill") else set()))

    if action == "open":
        severity = rec.check_severity(p.get("severity"))
        threshold = rec.check_severity(p.get("threshold") or "P2", "threshold")
        if severity_rank(severity) > severity_rank(threshold):
            out["lines"].append("incident: %s is below the threshold %s; none opened" % (severity, threshold))
            return out
        scenarios = [int(s) for s in p.get("scenarios") or []]
    elif action == "ack" and not p.get("by"):
        raise rec.IncidentError("by is required: who takes the incident (e.g. -e by=alice)")

    with store.locked(create=not check):
        if action == "open":
            record, opened = rec.open_or_update(store, now, severity, scenarios, p.get("hosts") or [],
                                                p.get("summary") or "", labels, p.get("source"),
                                                p.get("window_minutes", 120), p.get("next_step"))
            sent = rec.escalate(record, steps, notifier, now, check)
            touched = [(record, sent)]
            if opened:
                out["opened"].append(record["id"])
            out["lines"].append("incident %s: %s" % ("opened" if opened else "updated (no duplicate)",
                                                     rec.summary_line(record)))
        elif action == "escalate":
            targets = [store.load(p["id"])] if p.get("id") else [r for r in store.records()
                                                                 if r.get("status") in rec.ACTIVE]
            touched = [(r, rec.escalate(r, steps, notifier, now, check)) for r in targets]
            touched = [(r, s) for r, s in touched if s or p.get("id")]
            if not touched:
                out["lines"].append("escalate: nothing due (%d active incident(s))" % len(targets))
        elif action == "ack":
            touched = [(r, rec.acknowledge(r, p["by"], now, notifier, check)) for r in _pick(store, p.get("id"))]
        elif action == "resolve":
            if p.get("id"):
                targets = [store.load(p["id"])]
            elif p.get("by"):
                targets = _pick(store, None, drill=p.get("drill"))
            else:
                targets = rec.active_for(store.records(), p.get("hosts"), drill=p.get("drill"))
            touched = [(r, rec.resolve(r, now, notifier, run=p.get("run"), by=p.get("by"), check=check))
                       for r in targets]
            if not targets:
                out["lines"].append("resolve: no active incident%s" % (" of " + ", ".join(p["hosts"])
                                                                       if p.get("hosts") else ""))
        else:
            touched = [(store.load(p["id"]), [])] if p.get("id") else [(r, []) for r in store.records()]
        for record, sent in touched:
            if action != "show" and _differs(store, record):
                out["changed"] = True
                if not check:
                    store.save(record)
            out["incidents"].append(record)
            out["notifications"] += sent
            if action != "open":
                out["lines"].append(rec.summary_line(record))
            out["lines"] += ["  " + rec.delivery_line(e) for e in sent]
            out["warnings"] += ["%s: %s via %s failed after %d attempt(s): %s" % (
                record["id"], e["event"], e["channel"], len(e["attempts"]), e["attempts"][-1]["result"])
                for e in sent if e["status"] == "failed"]
    if not check and action in ("open", "resolve") and p.get("ref_dir"):
        write_ref(p["ref_dir"], store.root, out["incidents"], "opened" if action == "open" else "resolved")
    secrets = notify.secrets_of(channels)
    out["lines"] = [notify.scrub(line, secrets) for line in out["lines"]]
    out["warnings"] = [notify.scrub(w, secrets) for w in out["warnings"]]
    return out
