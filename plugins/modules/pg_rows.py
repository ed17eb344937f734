#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Rows mode: check tables, plan from a point-in-time copy, apply to live, or export the copy's rows."""

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: pg_rows
short_description: Put back rows from a point-in-time copy into the live database, by key
description:
  - O(action=check) validates O(tables), O(where) and O(mode) and reads each live table's key (primary key,
    else a unique index on NOT NULL columns); a table without one is refused. Read-only.
  - O(action=plan) compares the copy (M(healthbutler.recovery.pg_rows_copy)) with live by key and writes
    C(rows-plan.json), the fix as C(rows-plan.sql) and the rows as C(rows-<table>.csv) into O(run_dir). Live is
    only read.
  - O(action=apply) runs C(rows-plan.sql)'s transaction on live - parents first, the live rows it overwrites saved
    into C(<table>_pre_rows_<utc>), conflicts (a key back live, a row changed again) skipped and reported,
    sequences moved forward - then checks that every applied key holds the copy's values.
  - O(action=export) writes the copy's rows of O(tables) (with O(where)) to O(run_dir) as CSV, or with
    O(export_format=dump) as C(pg_dump -Fc --data-only -t); live is not touched.
version_added: "1.1.0"
author:
  - Health Butler SRE (@healthbutler)
extends_documentation_fragment:
  - healthbutler.recovery.postgres
options:
  action: {description: What to do., type: str, choices: [check, plan, apply, export], default: plan}
  tables: {description: Tables (C(schema.table) allowed)., type: raw, required: true}
  where: {description: "Per table, a predicate on the copy (C({health_data: user_id = 42}))", type: dict, default: {}}
  mode:
    description: Rows to bring back - absent live (V(missing)), different (V(changed)) or V(both).
    type: str
    default: missing
  db_name: {description: Database (same name in the copy and live)., type: str, required: true}
  copy_dir: {description: Directory of the copy (its socket directory)., type: path}
  copy_port: {description: Port of the copy., type: int}
  run_dir: {description: "Run directory for the plan, CSV, SQL and the result.", type: path, required: true}
  run_stamp: {description: UTC stamp of the run (names the preserved tables)., type: str, required: true}
  disable_triggers:
    description: Disable user triggers of the touched tables inside the transaction.
    type: bool
    default: false
  export_format: {description: Format of O(action=export)., type: str, choices: [csv, dump], default: csv}
attributes:
  check_mode:
    support: full
    description: check/plan/export run (they change nothing live); apply reports and does nothing.
notes:
  - Runs as root; C(psql) and C(pg_dump) run as O(pg_os_user) through C(su), over the sockets.
"""

EXAMPLES = r"""
- name: Plan
  healthbutler.recovery.pg_rows:
    action: plan
    tables: [users, health_data]
    mode: both
    db_name: health_butler
    copy_dir: /var/lib/postgresql/14/main.rows_copy_20261128T031500Z
    copy_port: 8432
    pg_bindir: /usr/lib/postgresql/14/bin
    pg_socket_dir: /var/run/postgresql
    run_dir: /var/lib/healthbutler/runs/20261128T031500Z-recover-db
    run_stamp: 20261128T031500Z
"""

RETURN = r"""
tables:
  description: O(action=check) - the tables with their key, columns and parents.
  returned: action=check
  type: list
  elements: dict
plan:
  description: The plan without rows - per table C(insert), C(update), C(sample_insert), C(sample_update).
  returned: action in (plan, apply)
  type: dict
plan_lines:
  description: The plan for the operator.
  returned: action=plan
  type: list
  elements: str
files:
  description: Files written into O(run_dir).
  returned: action in (plan, export)
  type: list
  elements: str
applied:
  description: Per table C(inserted), C(updated), C(conflicts); C(preserved_tables) with their row counts.
  returned: action=apply
  type: dict
verification:
  description: C(ok), C(checked) keys, C(differ) (key and why) after commit.
  returned: action=apply
  type: dict
rows_before:
  description: Rows per table before the transaction.
  returned: action=apply
  type: dict
rows_after:
  description: Rows per table after it.
  returned: action=apply
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import pg_rows_run
from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import postgres_server
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import (
    AnsibleRunner,
    RecoveryError,
    fail_from,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", choices=["check", "plan", "apply", "export"], default="plan"),
            tables=dict(type="raw", required=True),
            where=dict(type="dict", default={}),
            mode=dict(type="str", default="missing"),
            db_name=dict(type="str", required=True),
            copy_dir=dict(type="path"),
            copy_port=dict(type="int"),
            run_dir=dict(type="path", required=True),
            run_stamp=dict(type="str", required=True),
            disable_triggers=dict(type="bool", default=False),
            export_format=dict(type="str", choices=["csv", "dump"], default="csv"),
            **postgres_server(),
        ),
        required_if=[("action", "plan", ["copy_dir", "copy_port"]), ("action", "export", ["copy_dir", "copy_port"])],
        supports_check_mode=True,
    )
    p = dict(module.params)
    runner = AnsibleRunner(module)
    try:
        if p["action"] == "apply" and module.check_mode:
            module.exit_json(changed=False, msg="check mode: nothing applied")
        result = getattr(pg_rows_run, p["action"])(runner, p)
    except RecoveryError as exc:
        fail_from(module, exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
