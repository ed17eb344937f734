#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: pg_replication_state
short_description: One PostgreSQL server's streaming-replication view, running or not, in one call
version_added: "0.2.0"
description:
  - Read-only. Reads C(pg_controldata) (cluster state, timeline, checkpoint), asks C(pg_ctl status) whether the
    server runs and, when it does, makes one psql round trip over the socket - recovery state, timeline, current,
    received and replayed LSNs, C(pg_last_xact_replay_timestamp()), C(pg_stat_wal_receiver),
    C(pg_stat_replication) with lag in bytes and seconds, physical slots.
  - When the server is down it reads the end of its WAL with C(pg_waldump) from the last checkpoint's REDO
    point (O(read_wal_end)), so that a failover can measure what a promotion loses.
  - Run it as the cluster's owner (C(become_user) the O(pg_os_user)), for peer authentication over the socket.
author:
  - Health Butler SRE (@healthbutler)
extends_documentation_fragment:
  - healthbutler.recovery.postgres
options:
  data_dir:
    description: The cluster's data directory.
    type: path
    required: true
  read_wal_end:
    description: When the server is down, read the end of its WAL with C(pg_waldump).
    type: bool
    default: true
notes:
  - Check mode is supported (the module never changes anything).
seealso:
  - module: healthbutler.recovery.env_database_url
"""

EXAMPLES = r"""
- name: Replication state of the standby
  healthbutler.recovery.pg_replication_state:
    pg_bindir: /usr/lib/postgresql/15/bin
    pg_socket_dir: /var/run/postgresql
    pg_port: 5432
    data_dir: /var/lib/postgresql/15/main
  become: true
  become_user: postgres
  register: standby
"""

RETURN = r"""
role:
  description: C(primary), C(standby) or C(down).
  returned: always
  type: str
running:
  description: C(pg_ctl status) says the server runs.
  returned: always
  type: bool
timeline:
  description: The server's timeline (from the server, else from C(pg_controldata)).
  returned: always
  type: int
wal_end_lsn:
  description: The current LSN of a primary, the received LSN of a standby, the end of valid WAL of a stopped server.
  returned: always
  type: str
  sample: 0/5000060
control:
  description: C(cluster_state), C(timeline), C(checkpoint_lsn), C(redo_lsn), C(data_checksums), C(wal_log_hints).
  returned: always
  type: dict
sql:
  description: >-
    The server's answer when it runs - C(in_recovery), C(current_lsn), C(receive_lsn), C(replay_lsn),
    C(replay_timestamp), C(replay_delay_s), C(receiver), C(replicas) (with C(lag_bytes), C(lag_s)), C(slots).
  returned: always
  type: dict
summary:
  description: One line for the operator.
  returned: always
  type: str
errors:
  description: What could not be read, redacted.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import pg_replication
from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import postgres_server
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import Conn
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import AnsibleRunner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **postgres_server(),
            data_dir=dict(type="path", required=True),
            read_wal_end=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    conn = Conn(host=p["pg_socket_dir"], port=p["pg_port"], dbname="postgres", bindir=p["pg_bindir"])
    result = pg_replication.state(AnsibleRunner(module), conn, p["data_dir"], p["pg_bindir"], p["read_wal_end"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
