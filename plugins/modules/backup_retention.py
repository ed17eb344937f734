#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_retention
short_description: Prune backups and WAL past the retention policy, keeping everything the window needs
version_added: "0.1.0"
author:
  - Health Butler SRE (@healthbutler)
description:
  - Plans with the backup catalogue of O(backup_dir) (and O(wal_dir)) what lies outside the retention window
    (C(now - retention_days)).
  - Keeps everything inside the window, the newest backup of each kind older than the window (so the
    start of the window stays restorable), every WAL segment from the oldest kept base backup's start
    segment on, bundles holding such segments, and every timeline history file.
  - Removes the rest and returns what it removed. In check mode it only returns the list.
options:
  backup_dir:
    description:
      - The backup directory (C(hb_backup_dir), or the offsite directory on its host).
      - It was C(path); the old name stays as an alias.
    aliases: [path]
  wal_dir:
    description: The WAL archive directory (C(hb_wal_archive_dir)) to prune alongside.
  retention_days:
    description: Length of the window in days (RUNBOOK 备份保留 30 天).
    type: int
    default: 30
  legacy_pattern:
    description: Regular expression for legacy dump names (see backup_catalog).
    type: str
  now:
    description: Judge as of this UTC time (ISO-8601). Default now.
    type: str
extends_documentation_fragment:
  - healthbutler.recovery.backup_location
attributes:
  check_mode:
    support: full
    description: Under C(--check) the module reports what it would do and changes nothing.
"""

EXAMPLES = r"""
- name: Show what retention would remove
  healthbutler.recovery.backup_retention:
    backup_dir: /var/backups/health_butler
    wal_dir: /var/backups/wal
  check_mode: true
"""

RETURN = r"""
removed:
  description: What was (or in check mode would be) removed, each with C(kind), C(name), C(path), C(time), C(why).
  returned: always
  type: list
  elements: dict
kept:
  description: Backups kept (WAL segments omitted), each with C(why).
  returned: always
  type: list
  elements: dict
plan:
  description: C(window_start), C(oldest_kept_base), C(first_needed_segment).
  returned: always
  type: dict
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_catalog as bc
from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_policy
from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import backup_dir_with_alias


def remove(item):
    path = item["path"]
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
    for suffix in (".sha256", ".json"):
        if item["kind"] in ("dump", "base") and os.path.exists(path + suffix):
            os.unlink(path + suffix)


def main():
    module = AnsibleModule(
        argument_spec={
            **backup_dir_with_alias(),
            "retention_days": {"type": "int", "default": 30},
            "legacy_pattern": {"type": "str"},
            "now": {"type": "str"},
        },
        supports_check_mode=True,
    )
    p = module.params
    if p["retention_days"] < 1:
        module.fail_json(msg="retention_days must be >= 1 (days of backups to keep), got %s" % p["retention_days"])
    if not os.path.isdir(p["backup_dir"]):
        module.fail_json(msg="backup_dir %s is not a directory" % p["backup_dir"])
    try:
        now = bc.parse_time(p["now"]) if p["now"] else None
    except ValueError:
        module.fail_json(msg="now must be an ISO-8601 UTC time, got %r" % p["now"])
    catalog = bc.scan(p["backup_dir"], p["wal_dir"], legacy_pattern=p["legacy_pattern"] or bc.LEGACY_DUMP_PATTERN,
                      verify_checksums=False)
    plan = backup_policy.plan_retention(catalog, {"retention_days": p["retention_days"]}, now)
    if not module.check_mode:
        for item in plan["remove"]:
            try:
                remove(item)
            except OSError as exc:
                module.fail_json(msg="could not remove %s: %s" % (item["path"], exc), removed_so_far=item)
    module.exit_json(changed=bool(plan["remove"]), removed=plan["remove"],
                     kept=[k for k in plan["keep"] if k["kind"] != "wal"],
                     plan={k: plan[k] for k in ("window_start", "oldest_kept_base", "first_needed_segment")})


if __name__ == "__main__":
    main()
