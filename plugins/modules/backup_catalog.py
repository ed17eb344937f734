#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_catalog
short_description: Catalogue the backups of a location and its WAL archive (read-only)
version_added: "0.1.0"
author:
  - Health Butler SRE (@healthbutler)
description:
  - Scans a backup directory laid out by the C(healthbutler.recovery.backup) role (C(dumps/), C(base/),
    C(incremental/), C(files/)) plus legacy dumps such as C(backup_20250102.dump), and a flat WAL archive.
  - Returns every backup with its kind, UTC time, size and checksum state; for base backups the start and
    stop LSN, timeline and stop time read from C(backup_label) and C(backup_manifest); for the WAL archive
    the first and last segment, timelines, history and gaps.
  - Never writes. To catalogue an offsite C(host:path), run the module on that host (C(delegate_to)).
options:
  backup_dir:
    description:
      - The backup directory (C(hb_backup_dir), or the offsite directory on its host).
      - It was C(path); the old name stays as an alias.
    aliases: [path]
  wal_dir:
    description: The WAL archive directory (C(hb_wal_archive_dir)). Omit for an offsite copy.
  legacy_pattern:
    description: Regular expression for legacy dump names directly under O(backup_dir); named groups C(date)
      (YYYYmmdd) and optional C(time) (HHMMSS).
    type: str
    default: '^backup_(?P<date>\d{8})(?:[_T-]?(?P<time>\d{6}))?\.dump$'
  verify_checksums:
    description: Recompute the SHA-256 of each dump and shipped WAL segment against its sidecar or manifest.
      When false the state is C(unchecked) (or C(missing) without a sidecar).
    type: bool
    default: true
  include_segments:
    description: Return the per-segment list of the WAL archive (needed by the recovery_window filter).
    type: bool
    default: true
extends_documentation_fragment:
  - healthbutler.recovery.backup_location
attributes:
  check_mode:
    support: full
    description: Under C(--check) the module reports what it would do and changes nothing.
notes:
  - Supports check mode; the module never changes anything.
"""

EXAMPLES = r"""
- name: Catalogue local backups and the WAL archive
  healthbutler.recovery.backup_catalog:
    backup_dir: "{{ hb_backup_dir }}"
    wal_dir: "{{ hb_wal_archive_dir }}"
  register: backup_catalog_local

- name: Catalogue the offsite copy on its own host
  healthbutler.recovery.backup_catalog:
    backup_dir: /srv/offsite/health_butler
  delegate_to: backup-offsite
  register: backup_catalog_offsite
"""

RETURN = r"""
catalog:
  description: The catalogue (shape documented in CATALOG.md).
  returned: always
  type: dict
  contains:
    location:
      description: The scanned path.
      type: str
    scanned_at:
      description: UTC time of the scan.
      type: str
    backups:
      description: Every backup, oldest first, with C(kind), C(name), C(path), C(time), C(start_time), C(size),
        C(checksum) (C(state) ok, mismatch, missing or unchecked) and C(meta); base backups add C(start_lsn),
        C(stop_lsn), C(timeline), C(start_wal), C(stop_wal), C(stop_time), C(has_manifest).
      type: list
      elements: dict
    wal:
      description: C(dir), C(first), C(last), C(count), C(newest_time), C(gaps), C(timelines), C(history),
        C(segments).
      type: dict
summary:
  description: Per kind, C(count), C(newest) time, C(newest_name) and C(bytes); C(wal) counts and gaps.
  returned: always
  type: dict
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_catalog
from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import backup_dir_with_alias


def main():
    module = AnsibleModule(
        argument_spec={
            **backup_dir_with_alias(),
            "legacy_pattern": {"type": "str", "default": backup_catalog.LEGACY_DUMP_PATTERN},
            "verify_checksums": {"type": "bool", "default": True},
            "include_segments": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    if re.match(r"^[^/]+:", params["backup_dir"]):
        module.fail_json(msg="backup_dir %r is remote; run backup_catalog on that host with delegate_to"
                         % params["backup_dir"])
    try:
        re.compile(params["legacy_pattern"])
    except re.error as exc:
        module.fail_json(msg="legacy_pattern is not a valid regular expression: %s" % exc)
    if not os.path.isdir(params["backup_dir"]):
        module.fail_json(msg="backup_dir %s is not a directory (want the backup directory, e.g. hb_backup_dir)"
                         % params["backup_dir"])
    catalog = backup_catalog.scan(params["backup_dir"], wal_dir=params["wal_dir"],
                                  legacy_pattern=params["legacy_pattern"],
                                  verify_checksums=params["verify_checksums"],
                                  include_segments=params["include_segments"])
    module.exit_json(changed=False, catalog=catalog, summary=backup_catalog.summary(catalog))


if __name__ == "__main__":
    main()
