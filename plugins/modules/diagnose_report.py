#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: diagnose_report
short_description: Write diagnosis.json and diagnosis.md into a run directory on the controller
version_added: 0.1.0
description:
  - An action that runs on the controller only (nothing is sent to the managed host), in one step it
    creates I(run_dir) (mode 0750) and writes C(diagnosis.json) (I(result) as JSON) and C(diagnosis.md)
    (I(markdown)), both mode 0640, atomically.
  - Used by the C(healthbutler.recovery.diagnose) role; redact I(result) before passing it
    (P(healthbutler.recovery.redact_secrets#filter)).
author:
  - Health Butler SRE (@healthbutler)
attributes:
  check_mode:
    support: full
    description: In check mode nothing is written; the paths that would be written are returned.
  diff_mode:
    support: none
    description: No diff.
options:
  run_dir:
    description: The run directory (created when missing).
    type: path
    required: true
  result:
    description: What goes into C(diagnosis.json).
    type: dict
    required: true
  markdown:
    description: The text of C(diagnosis.md).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Write the reports
  healthbutler.recovery.diagnose_report:
    run_dir: "{{ diagnose_result.run_dir }}"
    result: "{{ diagnose_result | healthbutler.recovery.redact_secrets }}"
    markdown: "{{ lookup('ansible.builtin.template', 'diagnosis.md.j2') }}"
"""

RETURN = r"""
run_dir:
  description: The absolute run directory.
  returned: always
  type: str
  sample: /srv/runs/20261128T235040Z-diagnose
paths:
  description: Paths of the two reports.
  returned: always
  type: dict
  sample:
    json: /srv/runs/20261128T235040Z-diagnose/diagnosis.json
    markdown: /srv/runs/20261128T235040Z-diagnose/diagnosis.md
"""
