# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""node_profile filter: the top functions of a ``node --prof-process`` report."""

from __future__ import annotations

DOCUMENTATION = r"""
name: node_profile
author: healthbutler.recovery maintainers
version_added: "0.4.0"
short_description: Top JavaScript functions by ticks from C(node --prof-process) output
description:
  - Parses the C([JavaScript]) section of the text C(node --prof-process) prints for a V8 tick log
    (C(node --prof)) and returns the functions by ticks, marking those whose file lies under O(app_dir) and
    outside C(node_modules) as the app's own.
  - Pure function, no I/O.
options:
  _input:
    description: The text printed by C(node --prof-process).
    type: str
    required: true
  app_dir:
    description: The app's directory on its host.
    type: str
    required: true
  top:
    description: How many functions to keep in C(top) and C(app_functions).
    type: int
    default: 10
  meta:
    description:
      - What was profiled (C(app), C(host), C(seconds), C(url), C(log)); when given, the result has the report as
        C(markdown) too.
    type: dict
"""

EXAMPLES = r"""
- name: Summarise a CPU profile
  ansible.builtin.set_fact:
    profile: "{{ processed.stdout | healthbutler.recovery.node_profile('/app/current') }}"
"""

RETURN = r"""
_value:
  description:
    - C(ticks), C(unaccounted), C(functions), C(top) and C(app_functions); each function has C(ticks), C(share)
      (percent of all ticks), C(function), C(file), C(line) and C(app).
    - C(markdown), the report, when O(meta) is given.
  type: dict
"""

from ansible_collections.healthbutler.recovery.plugins.module_utils import node_profile as np


def node_profile(text, app_dir, top=10, meta=None):
    summary = np.parse(text or "", app_dir, int(top))
    if meta:
        summary["markdown"] = np.markdown(summary, meta)
    return summary


class FilterModule:
    def filters(self):
        return {"node_profile": node_profile}
