#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_evaluate
short_description: Judge one drilled scenario (detect, RTO, RPO against its P-level targets)
description:
  - Reads the writer's log, takes the phase times and step statuses recorded by the drill role and the ids
    found in the database after recovery, and computes time to detect, RTO (injection to steady state),
    write downtime and RPO (acknowledged writes that are gone, and their time span).
  - Compares them with the targets of the expected P-level, lists the deviations and gives the verdict
    (passed, failed, aborted, injection_failed, proved, unavailable). Writes C(result.json) into the scenario directory.
version_added: "1.0.0"
author:
  - Health Butler SRE (@healthbutler)
options:
  scenario:
    description: The scenario as returned by M(healthbutler.recovery.drill_plan).
    type: dict
    required: true
  marks:
    description: Phase times (UTC ISO-8601), e.g. C(inject_start), C(steady_after_end).
    type: dict
    default: {}
  statuses:
    description: Step name to status (ok, failed, not_run...), plus C(aborted) or C(unavailable) reasons.
    type: dict
    default: {}
  details:
    description: Step name to a short detail.
    type: dict
    default: {}
  detection:
    description: The detection result of M(healthbutler.recovery.drill_playbook).
    type: dict
    default: {}
  recovery:
    description: The recovery run result of M(healthbutler.recovery.drill_playbook).
    type: dict
    default: {}
  facts:
    description: Facts recorded at injection (restore point, LSN, C(cutoff_epoch)).
    type: dict
    default: {}
  writes_log:
    description: The writer's JSON-lines log.
    type: path
  present_ids:
    description: Row ids found in the database after recovery within the acknowledged id range; omit to skip the RPO.
    type: list
    elements: int
  effect:
    description:
      - What the effect probe (M(healthbutler.recovery.drill_effect)) saw after the injection.
      - When it did not see the fault, the verdict is C(injection_failed) and nothing else is graded.
    type: dict
  mode:
    description: V(full) grades detection, recovery, RTO and RPO; V(inject_only) judges the effect, rollback and
      steady state only (verdict C(proved)).
    type: str
    choices: [full, inject_only]
    default: full
"""

EXAMPLES = r"""
- name: Judge the scenario
  healthbutler.recovery.drill_evaluate:
    scenario: "{{ drill_scenario }}"
    marks: "{{ drill_marks }}"
    statuses: "{{ drill_statuses }}"
    writes_log: "{{ drill_scenario.dir }}/writes.jsonl"
    present_ids: [101, 102]
"""

RETURN = r"""
result:
  description: The scenario's journal entry (also written to C(result.json)).
  type: dict
  returned: always
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_journal, drill_measure


def main():
    module = AnsibleModule(argument_spec={
        "scenario": {"type": "dict", "required": True},
        "marks": {"type": "dict", "default": {}},
        "statuses": {"type": "dict", "default": {}},
        "details": {"type": "dict", "default": {}},
        "detection": {"type": "dict", "default": {}},
        "recovery": {"type": "dict", "default": {}},
        "facts": {"type": "dict", "default": {}},
        "writes_log": {"type": "path"},
        "present_ids": {"type": "list", "elements": "int"},
        "effect": {"type": "dict"},
        "mode": {"type": "str", "choices": ["full", "inject_only"], "default": "full"},
    }, supports_check_mode=True)
    p = module.params
    writes = []
    if p["writes_log"] and os.path.exists(p["writes_log"]):
        with open(p["writes_log"], encoding="utf-8") as fh:
            writes = drill_measure.parse_writes(fh.read())
    result = drill_journal.evaluate(p["scenario"], p["marks"], p["statuses"], p["details"], p["detection"],
                                    p["recovery"], writes, p["present_ids"], p["facts"],
                                    p["effect"], p["mode"])
    changed = False
    if not module.check_mode and p["scenario"].get("dir"):
        os.makedirs(p["scenario"]["dir"], exist_ok=True)
        with open(os.path.join(p["scenario"]["dir"], "result.json"), "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1, sort_keys=True)
        changed = True
    module.exit_json(changed=changed, result=result)


if __name__ == "__main__":
    main()
