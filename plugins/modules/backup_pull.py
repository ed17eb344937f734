#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_pull
short_description: Pull a backup tree from another host, read-only over ssh, never overwriting
version_added: "0.2.0"
author:
  - Health Butler SRE (@healthbutler)
description:
  - Runs C(rsync --ignore-existing) from O(source) (C(user@host:path), served by C(rrsync -ro) on that host)
    into the local O(dest), skipping files still being written (C(*.partial), C(*.tmp)); modes are kept, the owner is
    the module's user.
  - Then compares every file pulled in this run with the source by checksum (C(rsync --checksum --dry-run))
    and fails when one differs.
  - Used by the backup role (the backup host pulls what the db host wrote) and by recover_db (the db host
    pulls base backups, WAL and dumps back from the backup host). See C(docs/backup-topology.md).
options:
  source:
    description: C(user@host:path); the path is relative to the directory the serving host exposes.
    type: str
    required: true
  dest:
    description: Local directory to pull into (created 0700 when missing).
    type: path
    required: true
  key_file:
    description: Private key of the pulling user for this link only.
    type: path
    required: true
  known_hosts:
    description: known_hosts file holding the serving host's key (checked strictly).
    type: path
    required: true
  exclude:
    description: More rsync exclude patterns (relative to the pulled tree, C(/hosts/) anchors at its top).
    type: list
    elements: str
    default: []
  connect_timeout:
    description: Seconds for the ssh connection.
    type: int
    default: 10
attributes:
  check_mode:
    support: full
    description: Under C(--check) rsync runs with C(--dry-run) and the result lists what would be pulled.
"""

EXAMPLES = r"""
- name: The backup host pulls the db host's WAL archive
  healthbutler.recovery.backup_pull:
    source: deploy@10.20.0.21:wal
    dest: /var/backups/wal
    key_file: /var/lib/postgresql/.ssh/hb_backup_ed25519
    known_hosts: /var/lib/postgresql/.ssh/hb_backup_known_hosts
  become: true
  become_user: postgres
"""

RETURN = r"""
copied:
  description: Paths (relative to O(dest)) pulled in this run, or that would be under check mode.
  returned: always
  type: list
  elements: str
differences:
  description: Pulled files whose checksum differs from the source (C(path), C(state)).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_ship
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import AnsibleRunner, CommandError


def main():
    module = AnsibleModule(
        argument_spec={
            "source": {"type": "str", "required": True},
            "dest": {"type": "path", "required": True},
            "key_file": {"type": "path", "required": True},
            "known_hosts": {"type": "path", "required": True},
            "exclude": {"type": "list", "elements": "str", "default": []},
            "connect_timeout": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        rsh = backup_ship.ssh_command(p["key_file"], p["known_hosts"], ssh=module.get_bin_path("ssh", required=True),
                                      connect_timeout=p["connect_timeout"])
        result = backup_ship.pull(AnsibleRunner(module), p["source"], p["dest"], rsh=rsh,
                                  rsync=module.get_bin_path("rsync", required=True), dry_run=module.check_mode,
                                  excludes=backup_ship.EXCLUDES + tuple(p["exclude"]))
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    except CommandError as exc:
        module.fail_json(**exc.as_dict())
    except OSError as exc:
        module.fail_json(msg="pull from %s failed: %s" % (p["source"], exc))
    if result["differences"]:
        module.fail_json(msg="pulled copy differs from %s: %s" % (p["source"], ", ".join(
            "%s (%s)" % (d["path"], d["state"]) for d in result["differences"][:20])), **result)
    module.exit_json(changed=bool(result["copied"]), **result)


if __name__ == "__main__":
    main()
