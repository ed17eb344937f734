# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""recovery_phases filter: a recovery's phases and app downtime from its time marks."""

from __future__ import annotations

DOCUMENTATION = r"""
name: recovery_phases
author: healthbutler.recovery maintainers
version_added: "0.4.0"
short_description: The phases of a recovery, back to back, and its app downtime, from its time marks
description:
  - Takes the run's marks (epoch seconds by name, e.g. C(start), C(maintenance_on), C(app_stopped), C(restored),
    C(failed), C(resumed), C(serving)) and the end time.
  - Each phase runs from its mark to the next one in time, so the phases never overlap and add up to the wall time.
  - Downtime runs from C(maintenance_on) to C(serving) (/health 200, maintenance off).
  - Pure function, no I/O.
options:
  _input:
    description: The marks, a dict of name to epoch seconds.
    type: dict
    required: true
  end:
    description: Epoch seconds of the end of the run (when the record is written).
    type: float
    required: true
"""

EXAMPLES = r"""
- name: Phases and downtime for recovery.json
  ansible.builtin.set_fact:
    timing: "{{ recover_db_marks | healthbutler.recovery.recovery_phases(now(utc=true).timestamp()) }}"
"""

RETURN = r"""
_value:
  description:
    - C(phases) (list of C(step), C(mark), C(seconds)), C(wall_s), C(downtime_s) and C(downtime) (what the
      downtime spans).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.healthbutler.recovery.plugins.module_utils.recovery_phases import phases


def recovery_phases(marks, end):
    try:
        return phases(marks, end)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("recovery_phases: marks must be epoch seconds by name: %s" % exc) from None


class FilterModule:
    def filters(self):
        return {"recovery_phases": recovery_phases}
