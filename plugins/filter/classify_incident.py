# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
name: classify_incident
short_description: Turn diagnose facts into findings, scenario, P-level, targets and escalation
version_added: 0.1.0
author:
  - Health Butler SRE (@healthbutler)
description:
  - Applies the runbook's thresholds (API errors or the app unreachable, PM2 stopped/errored or restarting in a
    loop, the port not listening, memory over 90 %, response time over 2 s, CPU over 80 %, locks not granted,
    the database unreachable, connection saturation, ...) to facts gathered by
    P(healthbutler.recovery.diagnose#module).
  - The finding -> P-level table, thresholds, targets and escalation path live in one place,
    C(plugins/module_utils/incident_policy.py), and are printed in C(docs/diagnose.md).
  - The overall P-level is the most severe finding's; scenarios are listed most severe first.
options:
  _input:
    description:
      - "Diagnose facts: the module's C(facts), a whole diagnose result, a dict of C({host: facts}) or a list of
        these (several hosts are classified together; findings then carry C(host))."
    type: raw
    required: true
  elapsed_minutes:
    description: Minutes since the incident began; chooses the escalation step.
    type: float
    default: 0
  thresholds:
    description: Override some of the runbook thresholds (keys of C(incident_policy.THRESHOLDS)).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Classify what diagnose gathered on this host
  ansible.builtin.set_fact:
    incident: "{{ diagnosis.facts | healthbutler.recovery.classify_incident(elapsed_minutes=20) }}"

- name: Classify all hosts of the play together
  ansible.builtin.set_fact:
    incident: >-
      {{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, ['diagnosis', 'facts'])))
         | healthbutler.recovery.classify_incident }}

- name: A stricter response-time threshold
  ansible.builtin.debug:
    msg: "{{ diagnosis.facts | healthbutler.recovery.classify_incident(thresholds={'response_time_s': 1.0}) }}"
"""

RETURN = r"""
_value:
  description: The classification; a stable contract read by recovery playbooks and drills.
  type: dict
  contains:
    healthy:
      description: True when there is no finding.
      type: bool
    severity:
      description: C(P0) .. C(P3), or null when healthy.
      type: str
    scenarios:
      description: Runbook scenarios 1-5 that match, most severe first.
      type: list
      elements: int
    findings:
      description: >-
        [{id, severity, scenario, summary, evidence, next_playbook, host}], most severe first.
      type: list
      elements: dict
    targets:
      description: Response and resolution targets of the P-level (null when healthy).
      type: dict
    escalation:
      description: >-
        {step, role, contact, elapsed_minutes, notify, reason}: the escalation step for the elapsed time;
        a P0 always notifies the CTO. Null when healthy.
      type: dict
    next_playbook:
      description: The playbook to run next (from the most severe finding), or null.
      type: str
  sample:
    healthy: false
    severity: P0
    scenarios: [1]
    findings:
      - id: app_stopped
        severity: P0
        scenario: 1
        summary: PM2 shows health-butler stopped (pid 0)
        evidence: {status: stopped, pid: 0, restart_time: 0}
        next_playbook: healthbutler.recovery.restart_app
    targets: {response: immediately, resolution: "< 1 hour", response_minutes: 0, resolution_minutes: 60}
    escalation: {step: 1, role: on-call engineer, notify: [on-call engineer, CTO]}
    next_playbook: healthbutler.recovery.restart_app
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.healthbutler.recovery.plugins.module_utils.diagnose_classify import classify


def classify_incident(facts, elapsed_minutes=0, thresholds=None):
    try:
        return classify(facts, elapsed_minutes=elapsed_minutes, thresholds=thresholds)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("classify_incident: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"classify_incident": classify_incident}
