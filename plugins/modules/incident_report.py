#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: incident_report
short_description: Render the runbook's five-section post-incident report from a run directory
description:
  - Reads every C(timeline.jsonl) (incident_timeline callback) under O(run_dir), and C(diagnosis.json),
    C(recovery.json) and a drill's C(result.json) when present.
  - Writes C(incident-report.<lang>.md) and C(incident-report.<lang>.html) with the runbook's sections
    事故概述, 根因分析, 影响评估, 响应和恢复 (with the escalation step reached at each moment) and 改进措施
    (the 预防措施 checklist as action items). Values a run cannot know say so instead of staying empty.
version_added: "1.0.0"
author:
  - Health Butler SRE (@healthbutler)
options:
  run_dir:
    description: The run directory of the incident (or of a drilled scenario).
    type: path
    required: true
  lang:
    description: Report language.
    type: str
    choices: [zh, en]
    default: zh
  dest:
    description: Directory for the report files; defaults to O(run_dir).
    type: path
  incident_start:
    description: UTC ISO-8601 time the incident began, when it was before the first recorded run.
    type: str
  severity:
    description: P-level to report when no diagnosis in the run says it.
    type: str
    choices: [P0, P1, P2, P3]
"""

EXAMPLES = r"""
- name: Report on a failed recover-db run
  healthbutler.recovery.incident_report:
    run_dir: .sandbox/runs/20261128T235900Z-recover-db
    lang: en
"""

RETURN = r"""
markdown:
  description: Path of the Markdown report.
  type: str
  returned: success
html:
  description: Path of the HTML report.
  type: str
  returned: success
report:
  description: The report data (overview, root_cause, impact, response, improvements).
  type: dict
  returned: success
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import report_incident


def main():
    module = AnsibleModule(argument_spec={
        "run_dir": {"type": "path", "required": True},
        "lang": {"type": "str", "choices": ["zh", "en"], "default": "zh"},
        "dest": {"type": "path"},
        "incident_start": {"type": "str"},
        "severity": {"type": "str", "choices": ["P0", "P1", "P2", "P3"]},
    }, supports_check_mode=True)
    p = module.params
    try:
        run = report_incident.load_run(p["run_dir"])
        report = report_incident.build(run, incident_start=p["incident_start"], severity=p["severity"])
    except (report_incident.ReportError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    dest = p["dest"] or p["run_dir"]
    md = os.path.join(dest, "incident-report.%s.md" % p["lang"])
    page = os.path.join(dest, "incident-report.%s.html" % p["lang"])
    if not module.check_mode:
        os.makedirs(dest, exist_ok=True)
        with open(md, "w", encoding="utf-8") as fh:
            fh.write(report_incident.render_markdown(report, p["lang"]))
        with open(page, "w", encoding="utf-8") as fh:
            fh.write(report_incident.render_html(report, p["lang"]))
    module.exit_json(changed=not module.check_mode, markdown=md, html=page, report=report)


if __name__ == "__main__":
    main()
