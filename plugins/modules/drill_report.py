#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_report
short_description: Write the drill journal (journal.json), drill.md and drill.html from the scenario results
description:
  - Collects every scenario's C(result.json) under the drill's run directory in the order given, adds the totals
    and the runbook's drill checklist (演练检查清单 - what the run did, what remains manual) and writes
    C(journal.json), C(table.txt), C(drill.md) and a self-contained C(drill.html) (timeline chart in inline SVG,
    one row per
    scenario, against its P-level target; no external assets).
  - Returns the console table (one row per scenario).
version_added: "1.0.0"
author:
  - Health Butler SRE (@healthbutler)
options:
  run_dir:
    description: The drill's run directory.
    type: path
    required: true
  scenarios:
    description: Scenario names in report order (their directories hold C(result.json)).
    type: list
    elements: str
    required: true
  start:
    description: UTC start of the drill.
    type: str
  inventory:
    description: Inventory the drill ran against (for the record).
    type: str
    default: ""
  environment:
    description: The site's C(hb_environment).
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Write the drill reports
  healthbutler.recovery.drill_report:
    run_dir: "{{ drill_run_dir }}"
    scenarios: [app_crash, db_down]
"""

RETURN = r"""
table:
  description: The console table, one row per scenario.
  type: str
  returned: success
status:
  description: C(passed) when every scenario passed (or, inject-only, was proved), else C(failed).
  type: str
  returned: success
not_passed:
  description: The scenarios that did not pass, each with its verdict (e.g. C(injection_failed)) and first deviation.
  type: list
  elements: dict
  returned: success
html:
  description: Path of drill.html.
  type: str
  returned: success
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_journal, report_render
from ansible_collections.healthbutler.recovery.plugins.module_utils.drill_run import utc_now


def load_entries(run_dir, names):
    entries = []
    for name in names:
        path = os.path.join(run_dir, name, "result.json")
        try:
            with open(path, encoding="utf-8") as fh:
                entries.append(json.load(fh))
        except (OSError, ValueError):
            entries.append({"name": name, "status": "failed", "deviated": True, "steps": [],
                            "deviations": ["no result recorded (%s)" % path]})
    return entries


def main():
    module = AnsibleModule(argument_spec={
        "run_dir": {"type": "path", "required": True},
        "scenarios": {"type": "list", "elements": "str", "required": True},
        "start": {"type": "str"},
        "inventory": {"type": "str", "default": ""},
        "environment": {"type": "str", "default": ""},
    }, supports_check_mode=True)
    p = module.params
    entries = load_entries(p["run_dir"], p["scenarios"])
    journal = drill_journal.journal(entries, p["start"], utc_now(), p["inventory"], p["environment"], p["run_dir"])
    table = drill_journal.format_table(drill_journal.table_rows(entries))
    paths = {n: os.path.join(p["run_dir"], n) for n in ("journal.json", "drill.md", "drill.html", "table.txt")}
    if not module.check_mode:
        with open(paths["journal.json"], "w", encoding="utf-8") as fh:
            json.dump(journal, fh, indent=1, sort_keys=True)
        with open(paths["drill.md"], "w", encoding="utf-8") as fh:
            fh.write(report_render.drill_markdown(journal))
        with open(paths["drill.html"], "w", encoding="utf-8") as fh:
            fh.write(report_render.drill_html(journal))
        with open(paths["table.txt"], "w", encoding="utf-8") as fh:
            fh.write(table + "\n")
    module.exit_json(changed=not module.check_mode, table=table, status=journal["status"],
                     counts=journal["counts"], not_passed=journal["not_passed"],
                     html=paths["drill.html"], journal=paths["journal.json"],
                     markdown=paths["drill.md"])


if __name__ == "__main__":
    main()
