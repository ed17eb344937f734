#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Restore a pg_dump archive beside the live database and swap it in, or roll that back."""

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: pg_restore_db
short_description: Restore a C(pg_dump -Fc) archive without losing the live database
description:
  - O(state=planned) is the read-only pre-flight - the dump exists, matches its C(.sha256) sidecar,
    reads back in full (C(pg_restore -f /dev/null)), its table of contents is listed, and there is
    room for the restore; returns the plan and the live row counts.
  - O(state=restored) with O(strategy=beside) restores into C(<db>_restore_<stamp>) with
    C(pg_restore -j N --exit-on-error), runs the runbook's validation queries and compares row counts
    with the dump's table of contents and metadata (C(<dump>.json) C(tables)), then terminates sessions
    and swaps by C(ALTER DATABASE ... RENAME), keeping the old database as C(<db>_pre_restore_<stamp>).
  - O(strategy=in_place) is the runbook's C(pg_restore -c), after a safety dump of the live database.
  - Any failure rolls back by itself and fails naming the step. O(state=rolled_back) undoes a completed
    restore (used when a later step such as the app health check fails).
version_added: "1.0.0"
author:
  - Health Butler SRE (@healthbutler)
extends_documentation_fragment:
  - healthbutler.recovery.postgres
options:
  state: {description: What to do., type: str, choices: [planned, restored, rolled_back], default: restored}
  dump:
    description: "Path of the dump, a file name under O(backup_dir)/dumps, or C(latest)."
    type: str
    required: true
  backup_dir: {description: Backup tree (for names and C(latest))., type: path, required: true}
  db_name: {description: The live database., type: str, required: true}
  strategy:
    description: C(beside) (restore next to it and swap) or C(in_place) (C(pg_restore -c) after a safety dump).
    type: str
    choices: [beside, in_place]
    default: beside
  jobs: {description: C(pg_restore -j); 0 means the host's cores., type: int, default: 0}
  run_stamp:
    description: UTC stamp used in the names of the scratch and preserved databases.
    type: str
    required: true
  safety_dump_dir:
    description: Where O(strategy=in_place) writes its safety dump (readable and writable by O(pg_os_user)).
    type: path
  timeout: {description: Seconds allowed for C(pg_restore)., type: int, default: 7200}
attributes:
  check_mode: {support: full, description: Runs the pre-flight only.}
"""

EXAMPLES = r"""
- name: Restore the newest dump beside the live database
  healthbutler.recovery.pg_restore_db:
    dump: latest
    backup_dir: /var/backups/health_butler
    db_name: health_butler
    run_stamp: "20261128T103500Z"
    pg_bindir: /usr/lib/postgresql/14/bin
    pg_socket_dir: /var/run/postgresql
"""

RETURN = r"""
plan:
  description: Dump, checksum state, TOC tables, metadata, names of scratch/preserved/failed databases, disk.
  returned: always
  type: dict
rows_before:
  description: Rows per table of the live database before the run.
  returned: success
  type: dict
rows_after:
  description: Rows per table after the restore.
  returned: state=restored
  type: dict
validation:
  description: The runbook's validation queries and the count comparison.
  returned: state=restored
  type: dict
preserved_db:
  description: Name of the preserved previous database (beside) or path of the safety dump (in_place).
  returned: state=restored
  type: str
steps:
  description: Per-step name, start and seconds.
  returned: state=restored
  type: list
  elements: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import pg_restore_run as pr
from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import postgres_server
from ansible_collections.healthbutler.recovery.plugins.module_utils.pitr_exec import ExecError, PgServer
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import AnsibleRunner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["planned", "restored", "rolled_back"], default="restored"),
            dump=dict(type="str", required=True),
            backup_dir=dict(type="path", required=True),
            db_name=dict(type="str", required=True),
            strategy=dict(type="str", choices=["beside", "in_place"], default="beside"),
            jobs=dict(type="int", default=0),
            run_stamp=dict(type="str", required=True),
            safety_dump_dir=dict(type="path"),
            **postgres_server(),
            timeout=dict(type="int", default=7200),
        ),
        supports_check_mode=True,
    )
    p = module.params
    runner = AnsibleRunner(module)
    server = PgServer(runner, p["pg_bindir"], p["pg_os_user"], None, p["pg_port"], p["pg_socket_dir"])
    db, stamp = p["db_name"], p["run_stamp"]
    names = {"scratch": "%s_restore_%s" % (db, stamp), "preserved": "%s_pre_restore_%s" % (db, stamp),
             "failed": "%s_failed_restore_%s" % (db, stamp)}
    jobs = p["jobs"] or os.cpu_count() or 1
    dump = pr.resolve_dump(p["dump"], p["backup_dir"])
    safety = os.path.join(p["safety_dump_dir"] or os.path.dirname(dump), "%s_pre_restore_%s.dump" % (db, stamp))
    plan = {"dump": dump, "strategy": p["strategy"], "jobs": jobs, "databases": names, "safety_dump": safety}

    if p["state"] == "rolled_back":
        if module.check_mode:
            module.exit_json(changed=True, plan=plan, msg="would roll back")
        if p["strategy"] == "in_place":
            outcome = pr.rollback_in_place(runner, server, db, safety, jobs)
        else:
            outcome = pr.rollback_beside(server, db, names)
        if not outcome["ok"]:
            module.fail_json(msg="roll-back failed: %s" % "; ".join(outcome["actions"]), rollback=outcome, plan=plan)
        module.exit_json(changed=bool(outcome["actions"]), rollback=outcome, plan=plan,
                         msg="; ".join(outcome["actions"]) or "nothing to roll back")

    # -- pre-flight (every state) ------------------------------------------------------------
    # Restoring beside, the sha256 of the dump (checked by the pre-flight, while the app served) is checked again
    # beside the restore, before the swap, instead of before the restore on the downtime path.
    read_only = p["state"] == "planned" or module.check_mode
    try:
        info, rows_before = pr.preflight(runner, server, plan, p["backup_dir"], db,
                                         defer_checksum=not read_only and p["strategy"] == "beside",
                                         count_rows=read_only)
    except pr.PreflightError as exc:
        module.fail_json(msg=exc.msg, plan=plan)
    if read_only:
        module.exit_json(changed=False, plan=plan, rows_before=rows_before)

    # -- the restore ------------------------------------------------------------------------------
    try:
        if p["strategy"] == "beside":
            checksum = None
            if info["checksum"] == "deferred":
                checksum = pr.ChecksumThread(dump, pr.expected_sha256(dump))
                checksum.start()
            result = pr.restore_beside(runner, server, dump, db, names, jobs, plan["toc_tables"], info["meta"],
                                       p["timeout"], checksum=checksum)
        else:
            result = pr.restore_in_place(runner, server, dump, db, safety, jobs, plan["toc_tables"], info["meta"],
                                         p["timeout"])
            result["preserved_db"] = safety
    except ExecError as exc:
        rolled = exc.details.get("rollback") or {}
        module.fail_json(msg="dump restore failed at step '%s': %s. Roll-back: %s" % (
            exc.step, exc.msg, "; ".join(rolled.get("actions") or []) or "nothing was changed"),
            plan=plan, failed_step=exc.step, **exc.details)
    module.exit_json(changed=True, plan=plan, **result)


if __name__ == "__main__":
    main()
