#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Start (or remove) the point-in-time copy that rows mode compares with live."""

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: pg_rows_copy
short_description: A scratch PostgreSQL restored to a point in time beside the live server
description:
  - With O(state=present), copies the base backup chosen by M(healthbutler.recovery.pitr_plan) into
    O(dir) (data directory, socket and log inside it, mode 0700), sets its own O(copy_port), archiving off,
    replays the WAL archive to the plan's target and promotes it. The live server is not touched.
  - With O(state=absent), stops the copy and removes O(dir).
  - Runs under check mode too when asked (the copy is scratch, never live) - the calling role removes
    it at the end of a C(--check) run.
version_added: "1.1.0"
author:
  - Health Butler SRE (@healthbutler)
options:
  state:
    description: Present (restore and start) or absent (stop and remove).
    type: str
    choices: [present, absent]
    default: present
  dir: {description: Directory of the copy (C(<data_dir>.rows_copy_<UTC>))., type: path, required: true}
  copy_port: {description: Port of the copy (its socket lives in O(dir))., type: int, required: true}
  plan: {description: The C(plan) returned by M(healthbutler.recovery.pitr_plan) (target and base backup)., type: dict}
  wal_dir: {description: WAL archive read by C(restore_command)., type: path}
  pg_bindir: {description: PostgreSQL binaries (C(hb_pg_bindir))., type: path, required: true, aliases: [bindir]}
  pg_os_user:
    description: OS user that owns the copy and runs its server.
    type: str
    default: postgres
    aliases: [os_user]
  timeout: {description: Seconds allowed for the replay., type: int, default: 3600}
attributes:
  check_mode:
    support: full
    description: Reports what it would do; call it with C(check_mode false) to build the copy under C(--check).
notes:
  - Runs as root; C(pg_ctl) and C(psql) run as O(pg_os_user) through C(su).
"""

EXAMPLES = r"""
- name: Restore a copy to the target
  healthbutler.recovery.pg_rows_copy:
    dir: /var/lib/postgresql/14/main.rows_copy_20261128T031500Z
    copy_port: 8432
    plan: "{{ pitr_preflight.plan }}"
    wal_dir: /var/backups/wal
    pg_bindir: /usr/lib/postgresql/14/bin
"""

RETURN = r"""
scratch:
  description: How to reach the copy - C(dir), C(socket_dir), C(port), C(read_only_role), C(psql), C(log).
  returned: state=present
  type: dict
reached:
  description: The copy's log line where replay stopped (C(recovery stopping ...)), or null.
  returned: state=present
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import pg_bindir, pg_os_user
from ansible_collections.healthbutler.recovery.plugins.module_utils.pg_rows_copy import RowsCopy
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import (
    AnsibleRunner,
    RecoveryError,
    fail_from,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            dir=dict(type="path", required=True),
            copy_port=dict(type="int", required=True),
            plan=dict(type="dict"),
            wal_dir=dict(type="path"),
            **pg_bindir(required=True),
            **pg_os_user(),
            timeout=dict(type="int", default=3600),
        ),
        required_if=[("state", "present", ["plan", "wal_dir"])],
        supports_check_mode=True,
    )
    p = module.params
    copy = RowsCopy(AnsibleRunner(module), p["pg_bindir"], p["pg_os_user"], p["dir"], p["copy_port"], p["timeout"])
    if p["state"] == "absent":
        present = copy.exists()
        if module.check_mode or not present:
            module.exit_json(changed=present)
        if not copy.destroy():
            module.fail_json(msg="could not remove %s" % p["dir"])
        module.exit_json(changed=True)
    if module.check_mode:
        module.exit_json(changed=True, scratch=copy.connect_info(), reached=None)
    plan = p["plan"]
    try:
        info = copy.create(plan["base_backup"]["path"], plan["target"], p["wal_dir"], plan["recovery_timeline"])
    except RecoveryError as exc:
        fail_from(module, exc)
    module.exit_json(changed=True, scratch=info, reached=copy.reached())


if __name__ == "__main__":
    main()
