#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: pg_triage
short_description: Report slow statements, blocking chains and load; optionally cancel, then terminate, old blockers
version_added: "0.1.0"
description:
  - Reads the top statements by mean time from C(pg_stat_statements), choosing the column
    names from the view's own columns (C(mean_exec_time) on PostgreSQL 13+, C(mean_time) before).
    A missing extension is reported, not an error.
  - Reads blocking chains with C(pg_blocking_pids), with the age of each blocker's transaction,
    the number of locks not granted and the host load versus its cores.
  - With O(resolve=cancel) or O(resolve=terminate) it sends C(pg_cancel_backend) to every blocker whose
    transaction is at least O(blocker_min_age) seconds old; with V(terminate) it then terminates
    those still blocking after O(grace) seconds (an idle-in-transaction holder ignores a cancel).
  - Connects as the OS user it runs as, over O(pg_host) (peer authentication), so run it
    with C(become_user) set to the cluster's owner.
options:
  pg_database:
    description: Database to inspect.
    type: str
    default: postgres
    aliases: [db]
  pg_host:
    description: Unix socket directory (C(hb_pg_socket_dir)), or a host name.
    type: str
    aliases: [socket_dir]
  slow_limit:
    description: How many statements to report.
    type: int
    default: 10
  resolve:
    description: What to do with blockers older than O(blocker_min_age).
    type: str
    choices: [none, cancel, terminate]
    default: none
  blocker_min_age:
    description: Minimum age in seconds of a blocker's transaction before it is acted on.
    type: int
    default: 300
  grace:
    description: Seconds between the cancel and the terminate.
    type: int
    default: 5
  idle_user:
    description:
      - Terminate the C(idle) sessions (not in a transaction) of this database user that have been
        idle for at least O(idle_min_age) seconds. Frees slots held by a leaking pool. Omit to leave sessions alone.
    type: str
  idle_min_age:
    description: Idle seconds before a session of O(idle_user) is terminated.
    type: int
    default: 300
extends_documentation_fragment:
  - healthbutler.recovery.postgres.client
notes:
  - O(pg_bindir), O(pg_port), O(pg_host) and O(pg_database) were C(bindir), C(port), C(socket_dir) and C(db); the
    old names stay as aliases.
  - Supports check mode, the blockers that would be acted on are reported, nothing is sent.
author:
  - Health Butler SRE (@healthbutler)
"""

EXAMPLES = r"""
- name: Report only
  healthbutler.recovery.pg_triage:
    pg_database: health_butler
    pg_host: /var/run/postgresql
  become: true
  become_user: postgres

- name: Cancel, then terminate, blockers older than 10 minutes
  healthbutler.recovery.pg_triage:
    pg_database: health_butler
    pg_host: /var/run/postgresql
    resolve: terminate
    blocker_min_age: 600
  become: true
  become_user: postgres
"""

RETURN = r"""
slow_statements:
  description: Top statements by mean time (queryid, database, calls, mean_ms, total_ms, stddev_ms, max_ms, rows,
    first 300 characters of the query with secrets masked), read as the diagnose module reads them.
  returned: always
  type: list
  elements: dict
pg_stat_statements:
  description: V(installed), or why no statements are reported.
  returned: always
  type: str
blocking:
  description: One entry per blocked/blocker pair (pids, users, states, queries, blocker_xact_age_s, blocked_wait_s).
  returned: always
  type: list
  elements: dict
locks_not_granted:
  description: Rows of C(pg_locks) with C(granted = false).
  returned: always
  type: int
load:
  description: 1, 5 and 15 minute load, cores, and the 1-minute load per core.
  returned: always
  type: dict
blockers:
  description: Blockers old enough to act on (pid, age_s, user, state, query).
  returned: always
  type: list
  elements: dict
resolved:
  description: Signals sent, each C({pid, action}) with action cancel or terminate.
  returned: always
  type: list
  elements: dict
idle_sessions:
  description: Idle sessions of O(idle_user) old enough to terminate (pid, idle_s, application, client).
  returned: when O(idle_user) is set
  type: list
  elements: dict
idle_terminated:
  description: Pids of the idle sessions terminated.
  returned: when O(idle_user) is set
  type: list
  elements: int
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import postgres_client
from ansible_collections.healthbutler.recovery.plugins.module_utils.pg_control import (
    blockers_to_resolve,
    idle_sessions_sql,
    resolve_blockers,
    terminate_idle,
    triage,
)
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import Conn, query_json
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import AnsibleRunner, CommandError


def host_load():
    one, five, fifteen = os.getloadavg()
    cores = os.cpu_count() or 1
    return {"load1": one, "load5": five, "load15": fifteen, "cores": cores, "load1_per_core": round(one / cores, 2)}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            pg_database=dict(type="str", default="postgres", aliases=["db"]),
            pg_host=dict(type="str", aliases=["socket_dir"]),
            **postgres_client(),
            slow_limit=dict(type="int", default=10),
            resolve=dict(type="str", default="none", choices=["none", "cancel", "terminate"]),
            blocker_min_age=dict(type="int", default=300),
            grace=dict(type="int", default=5),
            idle_user=dict(type="str"),
            idle_min_age=dict(type="int", default=300),
        ),
        supports_check_mode=True,
    )
    p = module.params
    runner = AnsibleRunner(module)
    conn = Conn(host=p["pg_host"], port=p["pg_port"], dbname=p["pg_database"], bindir=p["pg_bindir"])
    result = dict(changed=False, resolved=[], load=host_load())
    try:
        result.update(triage(runner, conn, p["slow_limit"]))
        result["blockers"] = blockers_to_resolve(result["blocking"], p["blocker_min_age"])
        if p["resolve"] != "none" and result["blockers"]:
            result["changed"] = True
            if not module.check_mode:
                result["resolved"] = resolve_blockers(runner, conn, result["blockers"], p["resolve"], p["grace"])
        if p["idle_user"]:
            result["idle_sessions"] = query_json(runner, conn, idle_sessions_sql(p["idle_user"], p["idle_min_age"]))
            result["idle_terminated"] = []
            if result["idle_sessions"]:
                result["changed"] = True
                if not module.check_mode:
                    result["idle_terminated"] = terminate_idle(runner, conn, result["idle_sessions"])
    except CommandError as exc:
        module.fail_json(**dict(result, **exc.as_dict()))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
