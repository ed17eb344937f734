# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""failover_check filter: may this standby be promoted, and how far behind is it."""

from __future__ import annotations

DOCUMENTATION = r"""
name: failover_check
author: healthbutler.recovery maintainers
version_added: "0.2.0"
short_description: Judge whether a standby may be promoted
description:
  - Takes the standby's M(healthbutler.recovery.pg_replication_state) result and the old primary's (or none when
    its host cannot be reached).
  - The standby must be a running server in recovery on the primary's timeline; a primary that runs must see it
    streaming; its lag (the primary's current or last WAL end against what the standby received) must be under
    O(max_lag_bytes).
  - Pure function, no I/O.
options:
  _input:
    description: The standby's state.
    type: dict
    required: true
  primary:
    description: The old primary's state; omit or V(none) when its host cannot be reached.
    type: dict
  max_lag_bytes:
    description: Largest lag in bytes a promotion may lose.
    type: int
    default: 16777216
"""

EXAMPLES = r"""
- name: Refuse a standby that is not ready
  ansible.builtin.fail:
    msg: "{{ check.problems | join('; ') }}"
  when: not check.ok
  vars:
    check: "{{ standby_state | healthbutler.recovery.failover_check(primary_state, max_lag_bytes=16777216) }}"
"""

RETURN = r"""
_value:
  description: The judgement.
  type: dict
  contains:
    ok:
      description: The standby may be promoted.
      type: bool
    problems:
      description: What forbids it, one sentence each.
      type: list
      elements: str
    lag_bytes:
      description: Bytes the standby is behind (null when the primary's WAL end is unknown).
      type: int
    lag_from:
      description: What the lag was measured against.
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.healthbutler.recovery.plugins.module_utils.pg_replication import (
    failover_check as _failover_check,
)


def failover_check(standby, primary=None, max_lag_bytes=16777216):
    if not isinstance(standby, dict) or "role" not in standby:
        raise AnsibleFilterError("failover_check expects a pg_replication_state result (dict with 'role')")
    if primary is not None and not isinstance(primary, dict):
        raise AnsibleFilterError("failover_check: primary must be a pg_replication_state result or none")
    return _failover_check(standby, primary or None, max_lag_bytes, primary_reachable=bool(primary))


class FilterModule:
    def filters(self):
        return {"failover_check": failover_check}
