#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: uploads_restore
short_description: Restore an uploads directory from a backup with rsync, after a hard-link snapshot
version_added: "0.1.0"
description:
  - Plans with C(rsync -a -n --itemize-changes) (always, and only that in check mode).
  - When something would change, snapshots the live directory first with hard links
    (C(cp -al), falling back to C(rsync --link-dest)), so the snapshot costs no space and holds
    every file as it was, then runs the rsync for real.
  - Files present now but absent from the backup are kept unless O(delete_extra=true).
  - With O(verify=true), a second checksum dry run must find nothing left to transfer.
author:
  - Health Butler SRE (@healthbutler)
options:
  src:
    description: The backup copy of the uploads directory (its contents are restored).
    type: path
    required: true
  dest:
    description: The live uploads directory.
    type: path
    required: true
  delete_extra:
    description: Delete files in O(dest) that the backup does not have (rsync C(--delete)).
    type: bool
    default: false
  checksum:
    description: Compare file contents (rsync C(--checksum)), not only size and time.
    type: bool
    default: true
  snapshot_dir:
    description: Where the C(<dest name>.pre_restore_<UTC stamp>) snapshot goes; default beside O(dest)
      (hard links need the same filesystem).
    type: path
  stamp:
    description:
      - Names the snapshot C(<dest name>.pre_restore_<stamp>); default the current UTC time.
      - When a complete snapshot of that name exists (an interrupted run's, re-run with its stamp), it is kept
        as this run's snapshot and not taken again.
    type: str
  verify:
    description: After the restore, a checksum dry run must report nothing left to transfer.
    type: bool
    default: true
  owner:
    description:
      - Owner (name or uid) of the restored files; default the owner of O(dest), so files keep the app's
        owner whatever owns the backup. Applied only when the module runs as root.
    type: str
  group:
    description: Group (name or gid) of the restored files; default the group of O(dest).
    type: str
notes:
  - Check mode is supported and returns the itemized dry-run listing.
seealso:
  - module: healthbutler.recovery.env_restore
"""

EXAMPLES = r"""
- name: Show what a restore would do
  healthbutler.recovery.uploads_restore:
    src: /var/backups/health_butler/files/20261128T030000Z/uploads
    dest: /app/uploads
  check_mode: true
  register: plan

- name: Restore the uploads, keeping files created since the backup
  healthbutler.recovery.uploads_restore:
    src: /var/backups/health_butler/files/20261128T030000Z/uploads
    dest: /app/uploads
"""

RETURN = r"""
itemized:
  description: The rsync itemized lines (dry run in check mode), at most 500.
  returned: always
  type: list
  elements: str
  sample: [">f+++++++++ avatars/user-03.jpg", ">fcs....... reports/report-07.txt"]
summary:
  description: Counts per action (created, updated, changed, deleted, attributes).
  returned: always
  type: dict
  sample: {created: 1, updated: 1, changed: 0, deleted: 0, attributes: 2}
snapshot:
  description: The pre-restore snapshot directory (null when nothing changed or in check mode).
  returned: always
  type: str
  sample: /app/uploads.pre_restore_20261128T234500Z
snapshot_kept:
  description: The snapshot is an interrupted run's, found under O(stamp) and kept, not taken by this run.
  returned: always
  type: bool
verified:
  description: The post-restore checksum dry run found nothing left to transfer.
  returned: when something was restored and verify is true
  type: bool
"""

import datetime
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import files_sync
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import AnsibleRunner, CommandError

MAX_LINES = 500


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            delete_extra=dict(type="bool", default=False),
            checksum=dict(type="bool", default=True),
            snapshot_dir=dict(type="path"),
            stamp=dict(type="str"),
            verify=dict(type="bool", default=True),
            owner=dict(type="str"),
            group=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not os.path.isdir(p["src"]):
        module.fail_json(msg="backup copy %s does not exist or is not a directory" % p["src"])
    if os.path.realpath(p["src"]) == os.path.realpath(p["dest"]):
        module.fail_json(msg="src and dest are the same directory: %s" % p["src"])
    rsync = module.get_bin_path("rsync", required=True)
    runner = AnsibleRunner(module)
    chown = None
    if os.geteuid() == 0:
        ref = p["dest"] if os.path.isdir(p["dest"]) else os.path.dirname(p["dest"].rstrip("/"))
        st = os.stat(ref)
        chown = "%s:%s" % (p["owner"] or st.st_uid, p["group"] or st.st_gid)
    try:
        items, lines = files_sync.sync(runner, p["src"], p["dest"], rsync, dry_run=True,
                                       delete=p["delete_extra"], checksum=p["checksum"], chown=chown)
        changes = files_sync.content_changes(items)
        stamp = p["stamp"] or datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        snapshot = files_sync.snapshot_path(p["dest"], stamp, p["snapshot_dir"])
        kept = bool(p["stamp"]) and os.path.isdir(snapshot)
        result = dict(changed=bool(changes), itemized=lines[:MAX_LINES], summary=files_sync.summarize(items),
                      snapshot=snapshot if kept else None, snapshot_kept=kept)
        if not changes or module.check_mode:
            module.exit_json(**result)
        if os.path.isdir(p["dest"]) and not kept:
            result["snapshot"] = files_sync.snapshot(runner, p["dest"], snapshot)
        items, lines = files_sync.sync(runner, p["src"], p["dest"], rsync, delete=p["delete_extra"],
                                       checksum=p["checksum"], chown=chown)
        result.update(itemized=lines[:MAX_LINES], summary=files_sync.summarize(items))
        if p["verify"]:
            left, left_lines = files_sync.sync(runner, p["src"], p["dest"], rsync, dry_run=True,
                                               delete=p["delete_extra"], checksum=True, chown=chown)
            left = files_sync.content_changes(left)
            result["verified"] = not left
            if left:
                module.fail_json(msg="after the restore, %d item(s) still differ from the backup" % len(left),
                                 left=left_lines[:MAX_LINES], **result)
    except CommandError as exc:
        module.fail_json(**exc.as_dict())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
