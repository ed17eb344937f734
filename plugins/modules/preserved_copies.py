#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""List, or remove, the copies recover-db preserved."""

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: preserved_copies
short_description: List or remove the data directories, databases and dumps that recover-db preserved
description:
  - Finds C(<data_dir>.pre_pitr_<UTC>), C(<data_dir>.failed_pitr_<UTC>), databases
    C(<db>_pre_restore_<UTC>) and C(<db>_failed_restore_<UTC>), and safety dumps
    C(<db>_pre_restore_<UTC>.dump), rows mode's kept copies C(<data_dir>.rows_copy_<UTC>) (their server is
    stopped first) and tables C(<table>_pre_rows_<utc>), by exact name pattern (never the live ones).
  - With O(state=absent) removes those older than O(older_than_days). Check mode removes nothing.
version_added: "1.0.0"
author:
  - Health Butler SRE (@healthbutler)
extends_documentation_fragment:
  - healthbutler.recovery.postgres
options:
  state:
    description: C(listed) reports; C(absent) removes the old ones.
    type: str
    choices: [listed, absent]
    default: listed
  older_than_days:
    description: Only copies older than this many days are removed.
    type: float
    required: true
  data_dir: {description: The live data directory., type: path, required: true}
  db_name: {description: The live database., type: str, required: true}
  dump_dirs:
    description: Directories holding safety dumps.
    type: list
    elements: path
    default: []
  lock_dir:
    description:
      - The run-lock directory (C(hb_run_root)/locks). Copies whose stamp is that of a run still holding its
        lock with an open journal (interrupted, or running) are kept whatever their age, with C(held_by).
    type: path
attributes:
  check_mode: {support: full, description: Lists what would be removed; removes nothing.}
"""

EXAMPLES = r"""
- name: Remove preserved copies older than 7 days
  healthbutler.recovery.preserved_copies:
    state: absent
    older_than_days: 7
    data_dir: /var/lib/postgresql/14/main
    db_name: health_butler
    dump_dirs: [/var/backups/health_butler/dumps]
    pg_bindir: /usr/lib/postgresql/14/bin
    pg_socket_dir: /var/run/postgresql
"""

RETURN = r"""
copies:
  description:
    - Every preserved copy with kind, name, stamp, age_days and whether it is (or would be) removed.
    - C(held_by) says which interrupted run keeps a copy that is older than the limit.
  returned: always
  type: list
  elements: dict
removed:
  description: Names removed (none in check mode).
  returned: always
  type: list
  elements: str
"""

import datetime as dt
import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import preserved, run_journal
from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import postgres_server
from ansible_collections.healthbutler.recovery.plugins.module_utils.pg_rows_copy import RowsCopy
from ansible_collections.healthbutler.recovery.plugins.module_utils.pitr_exec import PgServer
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import quote_ident
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import AnsibleRunner, CommandError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["listed", "absent"], default="listed"),
            older_than_days=dict(type="float", required=True),
            data_dir=dict(type="path", required=True),
            db_name=dict(type="str", required=True),
            dump_dirs=dict(type="list", elements="path", default=[]),
            lock_dir=dict(type="path"),
            **postgres_server(),
        ),
        supports_check_mode=True,
    )
    p = module.params
    server = PgServer(AnsibleRunner(module), p["pg_bindir"], p["pg_os_user"], p["data_dir"], p["pg_port"],
                      p["pg_socket_dir"])
    try:
        databases = server.query("SELECT coalesce(json_agg(datname), '[]'::json) FROM pg_database")
    except CommandError as exc:
        module.fail_json(msg="cannot list databases: %s" % exc.msg)
    items = preserved.data_dir_copies(p["data_dir"]) + preserved.database_copies(p["db_name"], databases)
    for d in p["dump_dirs"]:
        items += preserved.dump_copies(p["db_name"], d)
    items += preserved.rows_copies(p["data_dir"])
    try:
        items += preserved.pre_rows_tables(server.query(preserved.PRE_ROWS_SQL, dbname=p["db_name"]))
    except CommandError as exc:
        module.fail_json(msg="cannot list the tables rows mode preserved in %s: %s" % (p["db_name"], exc.msg))
    copies = preserved.older_than(items, dt.datetime.now(dt.timezone.utc), p["older_than_days"],
                                  held=run_journal.open_runs(p["lock_dir"]))
    doomed = [c for c in copies if c["remove"]] if p["state"] == "absent" else []
    removed = []
    if not module.check_mode:
        for c in doomed:
            try:
                if c["kind"] == "data_dir":
                    shutil.rmtree(c["name"])
                elif c["kind"] == "rows_copy":
                    RowsCopy(server.runner, p["pg_bindir"], p["pg_os_user"], c["name"], 0).destroy()
                elif c["kind"] == "pre_rows_table":
                    schema, table = c["name"].split(".", 1)
                    server.query("DROP TABLE %s.%s; SELECT to_json(1)" % (quote_ident(schema), quote_ident(table)),
                                 dbname=p["db_name"])
                elif c["kind"] == "database":
                    server.query("SELECT to_json(count(pg_terminate_backend(pid))) FROM pg_stat_activity "
                                 "WHERE datname = '%s'" % c["name"].replace("'", "''"))
                    server.query("DROP DATABASE %s; SELECT to_json(1)" % quote_ident(c["name"]))
                else:
                    os.unlink(c["name"])
                removed.append(c["name"])
            except (OSError, CommandError) as exc:
                module.fail_json(msg="could not remove %s: %s" % (c["name"], getattr(exc, "msg", exc)),
                                 copies=copies, removed=removed)
    module.exit_json(changed=bool(doomed), copies=copies, removed=removed)


if __name__ == "__main__":
    main()
