# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""recovery_window filter: earliest and latest recoverable points of a backup catalogue."""

from __future__ import annotations

DOCUMENTATION = r"""
name: recovery_window
author: healthbutler.recovery maintainers
version_added: "0.1.0"
short_description: Earliest and latest point a backup catalogue can be recovered to
description:
  - Takes the C(catalog) returned by M(healthbutler.recovery.backup_catalog) and walks the archived
    WAL from each base backup's start segment along the newest timeline's history.
  - C(earliest) is the stop point of the oldest base backup that can be made consistent;
    C(latest) is the last segment reached without a hole from the best base backup.
  - A time target must be after the chosen base backup's C(stop_time) and not after C(latest.time);
    an LSN target must be at or after its C(stop_lsn) and before C(latest.lsn) (exclusive end).
  - Pure function, no I/O.
options:
  _input:
    description: A catalogue as returned by the backup_catalog module (with C(wal.segments)).
    type: dict
    required: true
  offsite:
    description:
      - V(false) uses the catalogue's base backups and WAL archive.
      - V(true) treats the catalogue as an offsite copy and adds the WAL segments of its
        shipped incremental bundles.
      - A second catalogue (the offsite one) merges its base backups and bundles with the input.
    type: raw
    default: false
"""

EXAMPLES = r"""
- name: Catalogue the local backups
  healthbutler.recovery.backup_catalog:
    path: /var/backups/health_butler
    wal_dir: /var/backups/wal
  register: local_backups

- name: Show the window
  ansible.builtin.debug:
    msg: "restorable from {{ window.earliest.time }} to {{ window.latest.time }}"
  vars:
    window: "{{ local_backups.catalog | healthbutler.recovery.recovery_window }}"
"""

RETURN = r"""
_value:
  description: The recovery window.
  type: dict
  contains:
    recoverable:
      description: Whether any base backup plus archived WAL reaches a consistent state.
      type: bool
    earliest:
      description: C(time), C(lsn) and C(backup) (name) of the oldest usable base backup's stop point.
      type: dict
    latest:
      description: C(time) (mtime of the last contiguous segment), C(lsn) (its exclusive end),
        C(segment), C(backup) and C(first_missing) (the segment where the walk stopped, if any).
      type: dict
    base_backups:
      description: Per base backup, C(name), C(stop_time), C(stop_lsn), C(timeline), C(usable),
        C(first_missing) and C(reaches) (C(time), C(lsn), C(segment)).
      type: list
      elements: dict
    gaps:
      description: Holes inside a timeline's run of archived segments.
      type: list
      elements: dict
    reason:
      description: Why the catalogue is not recoverable (empty when it is).
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.healthbutler.recovery.plugins.module_utils.backup_catalog import (
    recovery_window as _recovery_window,
)


def recovery_window(catalog, offsite=False):
    if not isinstance(catalog, dict) or "backups" not in catalog:
        raise AnsibleFilterError("recovery_window expects a backup catalogue (dict with 'backups'), got %s"
                                 % type(catalog).__name__)
    if not isinstance(offsite, (bool, dict)):
        raise AnsibleFilterError("recovery_window: offsite must be true, false or a catalogue dict")
    return _recovery_window(catalog, offsite=offsite)


class FilterModule:
    def filters(self):
        return {"recovery_window": recovery_window}
