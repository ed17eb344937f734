# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""backup_policy_violations filter: how a backup catalogue breaks the backup policy at a given time."""

from __future__ import annotations

DOCUMENTATION = r"""
name: backup_policy_violations
author: healthbutler.recovery maintainers
version_added: "0.1.0"
short_description: List how a backup catalogue breaks the backup policy
description:
  - RUNBOOK 备份策略 is full backup daily at 03:00, incremental every 4 hours, 30 days kept, offsite copy.
  - Returns one item per violation with C(kind), C(severity) (C(failed) or C(warning)) and C(message).
  - Kinds C(full_missing), C(full_stale) (newest dump or base backup older than C(full_interval_hours) +
    C(grace_hours)), C(incremental_missing), C(incremental_gap) (more than C(incremental_interval_hours) +
    C(grace_hours) between two incrementals inside the window or since the newest), C(retention_short)
    (warning - the oldest full backup is younger than the window), C(retention_excess) (warning - something
    older than the window is kept beyond the policy), C(offsite_missing), C(offsite_stale).
  - Boundaries are inclusive - an age exactly equal to the limit is not a violation.
  - Pure function, no I/O.
options:
  _input:
    description: The local catalogue (backup_catalog module's C(catalog)).
    type: dict
    required: true
  policy:
    description: Overrides of C(full_interval_hours) (24), C(incremental_interval_hours) (4), C(grace_hours) (1),
      C(retention_days) (30), C(offsite_required) (true), C(full_kinds) ([dump, base]).
    type: dict
    default: {}
  now:
    description: The time to judge at (ISO-8601 UTC); default the current time.
    type: str
  offsite:
    description: The offsite catalogue; when missing and C(offsite_required), C(offsite_missing) is reported.
    type: dict
"""

EXAMPLES = r"""
- name: Fail when the policy is broken
  ansible.builtin.assert:
    that: violations | selectattr('severity', 'equalto', 'failed') | list | length == 0
    fail_msg: "{{ violations | map(attribute='message') | list }}"
  vars:
    violations: "{{ local.catalog | healthbutler.recovery.backup_policy_violations(
                    {'grace_hours': 2}, now=ansible_date_time.iso8601, offsite=remote.catalog) }}"
"""

RETURN = r"""
_value:
  description: Violations, each with C(kind), C(severity), C(message) and evidence fields.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_policy


def backup_policy_violations(catalog, policy=None, now=None, offsite=None):
    if not isinstance(catalog, dict) or "backups" not in catalog:
        raise AnsibleFilterError("backup_policy_violations expects a backup catalogue (dict with 'backups')")
    try:
        return backup_policy.violations(catalog, policy or {}, now, offsite)
    except ValueError as exc:
        raise AnsibleFilterError("backup_policy_violations: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"backup_policy_violations": backup_policy_violations}
