#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: env_restore
short_description: Restore an app's .env from a backup copy, showing only redacted key differences
version_added: "0.1.0"
description:
  - Compares the backup copy O(src) with the live O(dest) key by key and reports the keys added,
    removed or changed with redacted values (only their length is shown); values are never returned,
    logged or shown in a diff.
  - Before replacing, keeps the live file as C(<dest>.pre_restore_<UTC stamp>) with its mode and owner.
  - Writes the restored file atomically with O(mode) (default C(0600)) and the live file's owner
    (or O(owner)/O(group)).
  - Returns RV(restart_needed) true only when keys or values differ, so the caller restarts the
    app only then.
author:
  - Health Butler SRE (@healthbutler)
options:
  src:
    description: The backup copy of the file.
    type: path
    required: true
  dest:
    description: The live .env file.
    type: path
    required: true
  mode:
    description: Mode of the restored file.
    type: str
    default: "0600"
  owner:
    description: Owner (name or uid) of the restored file; default the live file's owner.
    type: str
  group:
    description: Group (name or gid) of the restored file; default the live file's group.
    type: str
  stamp:
    description:
      - Names the kept copy C(<dest>.pre_restore_<stamp>); default the current UTC time.
      - When that copy exists (an interrupted run's, re-run with its stamp), it is kept as RV(previous), and the
        key differences and RV(restart_needed) are taken between it and O(src), so a run that replaced the file
        and died before the restart still restarts.
    type: str
notes:
  - Check mode and diff mode are supported; the diff shows keys with redacted values only.
seealso:
  - module: healthbutler.recovery.uploads_restore
"""

EXAMPLES = r"""
- name: Restore /app/.env from the newest file backup
  healthbutler.recovery.env_restore:
    src: /var/backups/health_butler/files/20261128T030000Z/env
    dest: /app/.env
  register: env

- name: Restart only when keys differ
  ansible.builtin.command: pm2 restart health-butler
  when: env.restart_needed
  changed_when: true
"""

RETURN = r"""
differences:
  description: Key differences between the live file and the backup, values redacted.
  returned: always
  type: dict
  contains:
    added:
      description: Keys only in the backup.
      type: list
      elements: str
    removed:
      description: Keys only in the live file.
      type: list
      elements: str
    changed:
      description: Keys in both with different values.
      type: list
      elements: str
    lines:
      description: 'Printable summary, for example C(~ JWT_SECRET: <redacted: 40 chars> -> <redacted: 40 chars>).'
      type: list
      elements: str
  sample: {added: [], removed: [], changed: [JWT_SECRET], same: 11, differ: true,
           lines: ["~ JWT_SECRET: <redacted: 40 chars> -> <redacted: 40 chars>"]}
restart_needed:
  description: Keys or values differ, so the app must be restarted to read them.
  returned: always
  type: bool
previous:
  description: Where the live file was kept (null when nothing was replaced).
  returned: always
  type: str
  sample: /app/.env.pre_restore_20261128T234500Z
mode:
  description: Mode of the file after the run.
  returned: always
  type: str
  sample: "0600"
"""

import datetime
import grp
import os
import pwd

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import env_file


def resolve_id(value, lookup, kind):
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        return lookup(value)[2]
    except KeyError:
        raise ValueError("%s %r does not exist on this host" % (kind, value)) from None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            mode=dict(type="str", default="0600"),
            owner=dict(type="str"),
            group=dict(type="str"),
            stamp=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    src, dest = module.params["src"], module.params["dest"]
    try:
        mode = int(module.params["mode"], 8)
        uid = resolve_id(module.params["owner"], pwd.getpwnam, "owner")
        gid = resolve_id(module.params["group"], grp.getgrnam, "group")
    except ValueError as exc:
        module.fail_json(msg="invalid mode/owner/group: %s" % exc)
    if not os.path.isfile(src):
        module.fail_json(msg="backup copy %s does not exist or is not a file" % src)
    try:
        wanted = env_file.read_env(src)
        exists = os.path.exists(dest)
        current = env_file.read_env(dest) if exists else {}
        with open(src, "rb") as fh:
            src_bytes = fh.read()
        dest_bytes, ident = b"", None
        if exists:
            with open(dest, "rb") as fh:
                dest_bytes = fh.read()
            ident = env_file.file_identity(dest)
            uid = ident["uid"] if uid is None else uid
            gid = ident["gid"] if gid is None else gid
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg="cannot read the env files: %s" % exc)
    stamp = module.params["stamp"] or datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    kept = "%s.pre_restore_%s" % (dest, stamp)
    kept = kept if module.params["stamp"] and os.path.isfile(kept) else None
    try:
        before = env_file.read_env(kept) if kept else current
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg="cannot read the kept copy %s: %s" % (kept, exc))
    keys = env_file.diff_keys(before, wanted)
    same_bytes = exists and src_bytes == dest_bytes
    attrs_ok = exists and ident == {"mode": "%04o" % mode, "uid": uid, "gid": gid}
    changed = not (same_bytes and attrs_ok)
    result = dict(changed=changed, differences=keys, restart_needed=keys["differ"], previous=kept,
                  mode="%04o" % mode)
    if module._diff:
        result["diff"] = {
            "before_header": dest, "after_header": "%s (restored from %s)" % (dest, src),
            "before": "".join("%s=%s\n" % kv for kv in env_file.redacted_view(current).items()),
            "after": "".join("%s=%s\n" % kv for kv in env_file.redacted_view(wanted).items())}
    if not changed or module.check_mode:
        if not changed:
            result["mode"] = env_file.file_identity(dest)["mode"]
        module.exit_json(**result)
    try:
        if exists and not same_bytes and not kept:
            result["previous"] = env_file.keep_previous(dest, stamp)
        env_file.install(src, dest, mode, uid, gid)
    except OSError as exc:
        module.fail_json(msg="restoring %s failed: %s" % (dest, exc), previous=result["previous"])
    result["mode"] = env_file.file_identity(dest)["mode"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
