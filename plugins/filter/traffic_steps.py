# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""traffic_steps filter: the steps of gradual traffic as the user gave them, checked."""

from __future__ import annotations

DOCUMENTATION = r"""
name: traffic_steps
author: healthbutler.recovery maintainers
version_added: "0.2.0"
short_description: Check and normalise the percentages of gradual traffic (10,50,100)
description:
  - Takes a list or a comma-separated string of whole percentages (a trailing C(%) is allowed) and returns
    them as integers. They must rise and end at 100.
  - Fails naming the input, C(steps), and the valid form.
  - Pure function, no I/O.
options:
  _input:
    description: The steps, e.g. V(10,50,100) or V([10, 50, 100]).
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Steps of restore_traffic
  ansible.builtin.set_fact:
    steps_checked: "{{ '10,50,100' | healthbutler.recovery.traffic_steps }}"
"""

RETURN = r"""
_value:
  description: The steps as ascending integers ending at 100.
  type: list
  elements: int
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.healthbutler.recovery.plugins.module_utils.proxy_traffic import parse_steps
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import RecoveryError


def traffic_steps(value):
    try:
        return parse_steps(value)
    except RecoveryError as exc:
        raise AnsibleFilterError(exc.msg) from None


class FilterModule:
    def filters(self):
        return {"traffic_steps": traffic_steps}
