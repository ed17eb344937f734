#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: pg_promote
short_description: Promote a streaming standby and report where its new timeline forked (the RPO point)
version_added: "0.2.0"
description:
  - Runs C(pg_ctl promote -w) on a server in recovery and waits until it leaves recovery; a server that is a primary
    already is left alone (re-running an interrupted failover finishes it).
  - Reads the new timeline's history file for the promoted point, resets the settings only a standby uses
    (C(primary_conninfo), C(primary_slot_name), C(restore_command)) and creates the physical slots in O(slots)
    (for the members that will stream from it).
  - With O(old_primary_end_lsn) returns the RPO in bytes (the old primary's WAL past the promoted point).
  - Run it as the cluster's owner (peer authentication over the socket).
author:
  - Health Butler SRE (@healthbutler)
extends_documentation_fragment:
  - healthbutler.recovery.postgres
options:
  data_dir:
    description: The standby's data directory.
    type: path
    required: true
  timeout:
    description: Seconds for the promotion.
    type: int
    default: 60
  slots:
    description: Physical replication slots to create on the promoted server.
    type: list
    elements: str
    default: []
  old_primary_end_lsn:
    description: The end of the old primary's WAL, when it could be read.
    type: str
notes:
  - Check mode is supported; it says whether a promotion would happen.
seealso:
  - module: healthbutler.recovery.pg_replication_state
"""

EXAMPLES = r"""
- name: Promote the standby
  healthbutler.recovery.pg_promote:
    pg_bindir: /usr/lib/postgresql/15/bin
    pg_socket_dir: /var/run/postgresql
    data_dir: /var/lib/postgresql/15/main
    slots: [hb_staging_db_1]
    old_primary_end_lsn: 0/5000060
  become: true
  become_user: postgres
"""

RETURN = r"""
promoted:
  description: The server is a primary after the run.
  returned: always
  type: bool
was_in_recovery:
  description: It was a standby before the run.
  returned: always
  type: bool
timeline:
  description: Its timeline after promotion.
  returned: always
  type: int
promoted_lsn:
  description: Where the new timeline forked off the old one.
  returned: always
  type: str
rpo:
  description: >-
    C(bytes) lost (null when the old primary's end is unknown), C(old_primary_end_lsn), C(promoted_lsn),
    C(measured).
  returned: always
  type: dict
slots_created:
  description: The slots this run created.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import pg_replication
from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import postgres_server
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import Conn
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import AnsibleRunner, CommandError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **postgres_server(),
            data_dir=dict(type="path", required=True),
            timeout=dict(type="int", default=60),
            slots=dict(type="list", elements="str", default=[]),
            old_primary_end_lsn=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    conn = Conn(host=p["pg_socket_dir"], port=p["pg_port"], dbname="postgres", bindir=p["pg_bindir"])
    try:
        result = pg_replication.promote(AnsibleRunner(module), conn, p["data_dir"], p["pg_bindir"], p["timeout"],
                                        p["slots"], p["old_primary_end_lsn"] or None, module.check_mode)
    except CommandError as exc:
        module.fail_json(**exc.as_dict())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
