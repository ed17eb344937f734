#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: incident
short_description: Open, escalate, acknowledge and resolve an incident record, notifying along the escalation path
description:
  - Keeps one JSON record per incident in O(incident_dir) on the controller (run it with C(delegate_to=localhost)).
  - C(open) opens an incident when O(severity) is at or above O(threshold), or updates the active incident of
    the same first scenario and overlapping hosts seen within O(window_minutes) (no duplicate), then notifies the
    steps that are due.
  - C(escalate) notifies every step of every open incident whose time has come, each step once (a P0 every step
    at once); acknowledged and resolved incidents are left alone. Meant to run every minute (cron, systemd timer,
    AWX schedule).
  - C(ack) records who took the incident and when, and stops the escalation; C(resolve) closes it and records the
    run that resolved it. Both send an acknowledge/resolve to every channel that got the trigger.
  - Channels are a JSON webhook, a Slack-compatible webhook, the PagerDuty Events API v2 (dedup key = incident id)
    and SMTP email, with the Python standard library. Each delivery is retried with a doubling backoff; every
    attempt is recorded; a delivery that fails for good is a warning, never a failure.
  - Incidents labelled C(drill) notify only O(drill_channel), unless O(drill_notify).
author:
  - Health Butler SRE (@healthbutler)
attributes:
  check_mode:
    support: full
    description: Nothing is written or sent; the deliveries that would be made are returned as C(would_send).
options:
  action:
    description: What to do.
    type: str
    required: true
    choices: [open, ack, resolve, escalate, show]
  incident_dir:
    description: Directory of the incident records on the controller.
    type: path
    required: true
  id:
    description: Incident id (C(INC-<UTC time>-<4 hex>)); C(ack) without it takes the only active incident.
    type: str
  severity:
    description: P-level of the incident (C(open)).
    type: str
    choices: [P0, P1, P2, P3]
  threshold:
    description: C(open) opens nothing for a P-level less severe than this.
    type: str
    choices: [P0, P1, P2, P3]
    default: P2
  scenarios:
    description: Runbook scenarios (1-5) of the incident; the first one identifies it.
    type: list
    elements: int
    default: []
  hosts:
    description:
      - Inventory names of the hosts concerned (C(open)).
      - C(resolve) without O(id) resolves the active incidents of these hosts.
    type: list
    elements: str
    default: []
  summary:
    description: One line saying what is wrong.
    type: str
    default: ""
  next_step:
    description: The playbook to run next (written into the notifications).
    type: str
  labels:
    description: Labels of a new incident.
    type: list
    elements: str
    default: []
  drill:
    description:
      - The incident belongs to a drill (label C(drill)).
      - C(resolve) with it resolves drill incidents only, and without it never one.
    type: bool
    default: false
  drill_channel:
    description: The only channel a drill incident notifies (empty = none).
    type: str
    default: ""
  drill_notify:
    description: Let a drill incident notify the real contacts.
    type: bool
    default: false
  source:
    description: Where the detection came from (C(kind), C(run_dir), C(findings)), kept in the record.
    type: dict
  window_minutes:
    description: A detection updates an active incident last updated within this many minutes.
    type: float
    default: 120
  by:
    description: Who acknowledges (C(ack), required) or resolves by hand.
    type: str
  run:
    description: The run that resolved the incident (C(playbook), C(run_dir), C(hosts), C(verification)).
    type: dict
  ref_dir:
    description:
      - A run directory to write C(incident.json) into, pointing at the incidents opened or resolved.
      - The incident report reads it.
    type: path
  now:
    description:
      - The current time as ISO-8601 UTC; empty = the clock.
      - For tests and replays only (the role reads C(HB_INCIDENT_NOW)).
    type: str
    default: ""
  escalation:
    description:
      - The escalation steps, each C(step), C(role), C(after_minutes) (since detection) and C(notify) (contact names).
    type: list
    elements: dict
    default: []
  contacts:
    description: Contacts by name, each C(role), C(email), C(channels) (channel names).
    type: dict
    default: {}
  channels:
    description: Notification channels; secrets (C(url), C(routing_key), C(password), C(headers)) are never logged.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Channel name (what contacts refer to).
        type: str
        required: true
      type:
        description: Kind of channel.
        type: str
        required: true
        choices: [webhook, slack, pagerduty, email]
      url:
        description: Webhook URL; for C(pagerduty) the Events API endpoint (default the public one).
        type: str
      routing_key:
        description: PagerDuty integration (routing) key.
        type: str
      headers:
        description: Extra HTTP headers of a webhook.
        type: dict
      host:
        description: SMTP server.
        type: str
      port:
        description: SMTP port (25, or 465 with O(channels[].ssl)).
        type: int
      username:
        description: SMTP login.
        type: str
      password:
        description: SMTP password.
        type: str
      from:
        description: Sender address of emails.
        type: str
      to:
        description: Fixed recipient of an email channel (a drill mailbox); default the contact's email.
        type: str
      starttls:
        description: STARTTLS after connecting.
        type: bool
      ssl:
        description: SMTP over TLS.
        type: bool
      timeout:
        description: Seconds per attempt.
        type: float
  notify:
    description: Deliver notifications; when false every delivery is recorded as skipped (a sandbox without receivers).
    type: bool
    default: true
  retries:
    description: Attempts after the first one of each delivery.
    type: int
    default: 3
  backoff_s:
    description: Seconds before the first retry; doubled for each next one.
    type: float
    default: 2
  timeout_s:
    description: Seconds per delivery attempt.
    type: float
    default: 10
"""

EXAMPLES = r"""
- name: Acknowledge the open incident
  healthbutler.recovery.incident:
    action: ack
    by: alice
    incident_dir: /srv/hb/runs/incidents
    contacts: "{{ hb_incident_contacts }}"
    escalation: "{{ hb_incident_escalation }}"
    channels: "{{ hb_incident_channels }}"
  delegate_to: localhost
"""

RETURN = r"""
incidents:
  description: The incident records touched (no secrets; see docs/incident.md for the fields).
  type: list
  elements: dict
  returned: always
notifications:
  description: The deliveries of this run, each with C(event), C(step), C(contacts), C(channel), C(status), C(attempts).
  type: list
  elements: dict
  returned: always
opened:
  description: Ids of the incidents opened by this run.
  type: list
  elements: str
  returned: always
lines:
  description: A console summary.
  type: list
  elements: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import incident_action
from ansible_collections.healthbutler.recovery.plugins.module_utils.incident_notify import ChannelError
from ansible_collections.healthbutler.recovery.plugins.module_utils.incident_record import IncidentError

SEVERITY = {"type": "str", "choices": ["P0", "P1", "P2", "P3"]}
CHANNEL = {
    "name": {"type": "str", "required": True},
    "type": {"type": "str", "required": True, "choices": ["webhook", "slack", "pagerduty", "email"]},
    "url": {"type": "str", "no_log": True},
    "routing_key": {"type": "str", "no_log": True},
    "headers": {"type": "dict", "no_log": True},
    "host": {"type": "str"},
    "port": {"type": "int"},
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "from": {"type": "str"},
    "to": {"type": "str"},
    "starttls": {"type": "bool"},
    "ssl": {"type": "bool"},
    "timeout": {"type": "float"},
}


def main():
    module = AnsibleModule(argument_spec={
        "action": {"type": "str", "required": True, "choices": ["open", "ack", "resolve", "escalate", "show"]},
        "incident_dir": {"type": "path", "required": True},
        "id": {"type": "str"},
        "severity": SEVERITY,
        "threshold": dict(SEVERITY, default="P2"),
        "scenarios": {"type": "list", "elements": "int", "default": []},
        "hosts": {"type": "list", "elements": "str", "default": []},
        "summary": {"type": "str", "default": ""},
        "next_step": {"type": "str"},
        "labels": {"type": "list", "elements": "str", "default": []},
        "drill": {"type": "bool", "default": False},
        "drill_channel": {"type": "str", "default": ""},
        "drill_notify": {"type": "bool", "default": False},
        "source": {"type": "dict"},
        "window_minutes": {"type": "float", "default": 120},
        "by": {"type": "str"},
        "run": {"type": "dict"},
        "ref_dir": {"type": "path"},
        "now": {"type": "str", "default": ""},
        "escalation": {"type": "list", "elements": "dict", "default": []},
        "contacts": {"type": "dict", "default": {}},
        "channels": {"type": "list", "elements": "dict", "default": [], "options": CHANNEL},
        "notify": {"type": "bool", "default": True},
        "retries": {"type": "int", "default": 3},
        "backoff_s": {"type": "float", "default": 2},
        "timeout_s": {"type": "float", "default": 10},
    }, required_if=[("action", "open", ["severity"])], supports_check_mode=True)
    try:
        out = incident_action.run(module.params, check=module.check_mode)
    except (IncidentError, ChannelError) as exc:
        module.fail_json(msg=str(exc))
    for warning in out.pop("warnings"):
        module.warn(warning)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
