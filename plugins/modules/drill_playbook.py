#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_playbook
short_description: Run a playbook of the collection as its own process, or run diagnosis until it detects
description:
  - C(action=run) runs one playbook with C(HB_RUN_DIR) set to O(run_dir), so that its own incident timeline
    is kept there, and returns rc, start, end, duration and the failed tasks of that timeline as evidence.
  - C(action=detect) runs the diagnosis playbook up to O(attempts) times until its C(diagnosis.json) classifies a
    P-level, and returns when that happened, the runbook scenario(s) and the P-level. Findings named in
    O(ignore_findings) (host load already present before the injection) are left out of the judgement.
  - C(action=baseline) diagnoses the steady state before an injection up to O(attempts) times and says
    C(clean) when no finding but host load (CPU) is left, else C(residue) with the leftover findings.
  - The module itself never fails because the playbook failed; the caller judges C(rc).
version_added: "1.0.0"
author:
  - Health Butler SRE (@healthbutler)
attributes:
  check_mode:
    support: full
    description: Under C(--check) no playbook is run.
    details: Under C(--check) no playbook is run; the module reports what it would run.
options:
  action:
    description: C(run), C(detect) or C(baseline).
    type: str
    choices: [run, detect, baseline]
    default: run
  playbook:
    description: Path of the playbook.
    type: path
    required: true
  inventory:
    description: Inventory sources passed with C(-i).
    type: list
    elements: path
    default: []
  run_dir:
    description: Run directory of this playbook run (detect makes C(detect-N) below it).
    type: path
    required: true
  extra_vars:
    description: Extra variables, passed as a JSON file.
    type: dict
    default: {}
  facts:
    description: Values for C({name}) placeholders in O(extra_vars) (e.g. the restore point recorded at injection).
    type: dict
    default: {}
  timeout:
    description: Seconds before the run is stopped (the drill's abort bound). 0 means none.
    type: int
    default: 0
  attempts:
    description: Diagnosis runs at most (detect, baseline).
    type: int
    default: 5
  delay:
    description: Seconds between diagnosis runs (detect, baseline).
    type: float
    default: 2
  ansible_playbook:
    description: The ansible-playbook executable.
    type: path
    default: ansible-playbook
  ignore_findings:
    description: Finding ids left out of the detection's judgement (detect), e.g. C(host_cpu_high) seen in the baseline.
    type: list
    elements: str
    default: []
  limit:
    description:
      - Hosts the playbook runs on (C(--limit)); empty runs it on the whole inventory. The drill limits the
        recovery of a fault scoped to the app to the app hosts it touched and the other groups' hosts.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Recover with the scenario's playbook
  healthbutler.recovery.drill_playbook:
    playbook: "{{ playbook_dir }}/restart_app.yml"
    inventory: "{{ ansible_inventory_sources }}"
    run_dir: /srv/runs/drill/app_crash/recover
    timeout: 600
"""

RETURN = r"""
run:
  description:
    - The run (action=run) with C(rc), C(start), C(end), C(duration_s), C(timed_out), C(run_dir),
      C(failed_tasks) (from the run's timeline, messages masked) and C(evidence).
    - C(rc) is null and C(unavailable) says why when the playbook does not exist.
  type: dict
  returned: action=run
detection:
  description: C(status) (detected, missed, unavailable), C(detected_at), C(p_level), C(scenarios), C(attempts).
  type: dict
  returned: action=detect
baseline:
  description: C(status) (clean, residue, unavailable), C(residue) (leftover findings), C(host_load), C(attempts).
  type: dict
  returned: action=baseline
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_catalog, drill_run
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import AnsibleRunner


def main():
    module = AnsibleModule(argument_spec={
        "action": {"type": "str", "choices": ["run", "detect", "baseline"], "default": "run"},
        "playbook": {"type": "path", "required": True},
        "inventory": {"type": "list", "elements": "path", "default": []},
        "run_dir": {"type": "path", "required": True},
        "extra_vars": {"type": "dict", "default": {}},
        "facts": {"type": "dict", "default": {}},
        "timeout": {"type": "int", "default": 0},
        "attempts": {"type": "int", "default": 5},
        "delay": {"type": "float", "default": 2},
        "ansible_playbook": {"type": "path", "default": "ansible-playbook"},
        "ignore_findings": {"type": "list", "elements": "str", "default": []},
        "limit": {"type": "list", "elements": "str", "default": []},
    }, supports_check_mode=True)
    p = module.params
    if module.check_mode:
        # A drill under --check injects nothing, so it runs no playbook either: report what it would run.
        module.exit_json(changed=p["action"] == "run", skipped_run=True,
                         msg="check mode: would %s %s" % (p["action"], p["playbook"]))
    runner = AnsibleRunner(module)
    timeout = p["timeout"] or None
    extra_vars = drill_catalog.render_vars(p["extra_vars"], p["facts"])
    if p["action"] == "detect":
        detection = drill_run.detect(runner, p["ansible_playbook"], p["playbook"], p["inventory"], p["run_dir"],
                                     attempts=p["attempts"], delay=p["delay"], timeout=timeout,
                                     extra_vars=extra_vars, ignore=p["ignore_findings"])
        module.exit_json(changed=False, detection=detection)
    if p["action"] == "baseline":
        steady = drill_run.baseline(runner, p["ansible_playbook"], p["playbook"], p["inventory"], p["run_dir"],
                                    attempts=p["attempts"], delay=p["delay"], timeout=timeout,
                                    extra_vars=extra_vars)
        module.exit_json(changed=False, baseline=steady)
    if not os.path.exists(p["playbook"]):
        module.exit_json(changed=False, run={"rc": None, "unavailable": "unavailable: %s missing" % os.path.basename(
            p["playbook"]), "failed_tasks": [], "evidence": ""})
    result = drill_run.run_playbook(runner, p["ansible_playbook"], p["playbook"], p["inventory"], p["run_dir"],
                                    extra_vars=extra_vars, timeout=timeout, limit=p["limit"])
    module.exit_json(changed=True, run=result)


if __name__ == "__main__":
    main()
