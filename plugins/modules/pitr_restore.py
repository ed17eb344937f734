#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Execute (or roll back) a point-in-time recovery planned by pitr_plan."""

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: pitr_restore
short_description: Restore a base backup and replay WAL to a target, or roll that back
description:
  - With O(state=restored), runs the plan made by M(healthbutler.recovery.pitr_plan) - stops PostgreSQL,
    moves the data directory aside (never deletes it), copies the base backup in with the cluster
    owner and mode 0700, writes the recovery settings for the major version (PG 12+ C(postgresql.auto.conf)
    plus C(recovery.signal), older C(recovery.conf)) with an explicit C(recovery_target_timeline),
    starts the server and follows the replay.
  - Success is judged in layers - the server is out of recovery (for C(promote)), the log says
    C(recovery stopping) and not C(recovery ended before configured recovery target was reached),
    C(pg_controldata) shows a new timeline. Then the recovery settings are removed with
    C(ALTER SYSTEM RESET) and WAL archiving is checked to continue on the new timeline.
  - Any failure after the first change rolls back by itself (restored directory kept as
    C(<data_dir>.failed_pitr_<stamp>), the preserved one moved back, the server started if it ran)
    and fails naming the step and where everything is.
  - With O(state=rolled_back), puts the preserved data directory back (used when a later step,
    such as the app health check, fails).
version_added: "1.0.0"
author:
  - Health Butler SRE (@healthbutler)
extends_documentation_fragment:
  - healthbutler.recovery.postgres
options:
  state: {description: What to do., type: str, choices: [restored, rolled_back], default: restored}
  plan: {description: The C(plan) returned by M(healthbutler.recovery.pitr_plan)., type: dict, required: true}
  wal_dir: {description: WAL archive read by C(restore_command)., type: path, required: true}
  log_file:
    description: "The server's log file (C(log_directory)/C(log_filename)), read to judge the recovery."
    type: path
    required: true
  startup_log: {description: File for C(pg_ctl -l)., type: path, required: true}
  progress_file: {description: Replay progress lines are appended here (tail it during long recoveries)., type: path}
  timeout: {description: Seconds to wait for the target., type: int, default: 3600}
  extra_settings:
    description: Extra settings for the recovering server (reset after promotion).
    type: dict
    default: {}
  db_name: {description: Database whose rows are counted after the recovery., type: str, required: true}
  was_running:
    description: For O(state=rolled_back) - start the original server afterwards.
    type: bool
    default: true
attributes:
  check_mode: {support: full, description: Reports what would be done and changes nothing.}
notes:
  - Runs as root; C(pg_ctl), C(psql) and C(pg_controldata) run as O(pg_os_user) through C(su).
  - Long recoveries - call it with C(async) and poll with C(async_status).
"""

EXAMPLES = r"""
- name: Recover
  healthbutler.recovery.pitr_restore:
    plan: "{{ pitr.plan }}"
    wal_dir: /var/backups/wal
    pg_bindir: /usr/lib/postgresql/14/bin
    pg_socket_dir: /var/run/postgresql
    log_file: /var/log/postgresql/postgresql.log
    startup_log: /var/log/postgresql/startup.log
    db_name: health_butler
  async: 7200
  poll: 0
  register: pitr_job
"""

RETURN = r"""
reached:
  description:
    - Where replay stopped - C(lsn) (redo done at), C(time) (last completed transaction),
      C(timeline), C(stopping) (the log line).
  returned: state=restored and success
  type: dict
steps:
  description: Per-step name, start and seconds.
  returned: always
  type: list
  elements: dict
rows_after:
  description: Rows per table of O(db_name) after the recovery.
  returned: state=restored and success
  type: dict
preserved_data_dir:
  description: Where the previous data directory is kept.
  returned: always
  type: str
rollback:
  description: What the roll-back did (on failure, or with O(state=rolled_back)).
  returned: when rolled back
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import pitr_exec
from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import postgres_server
from ansible_collections.healthbutler.recovery.plugins.module_utils.pg_restore_run import VALIDATION_SQL, counts
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import AnsibleRunner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["restored", "rolled_back"], default="restored"),
            plan=dict(type="dict", required=True),
            wal_dir=dict(type="path", required=True),
            **postgres_server(),
            log_file=dict(type="path", required=True),
            startup_log=dict(type="path", required=True),
            progress_file=dict(type="path"),
            timeout=dict(type="int", default=3600),
            extra_settings=dict(type="dict", default={}),
            db_name=dict(type="str", required=True),
            was_running=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    plan = p["plan"]
    paths = plan["paths"]
    runner = AnsibleRunner(module)
    server = pitr_exec.PgServer(runner, p["pg_bindir"], p["pg_os_user"], paths["data_dir"], p["pg_port"],
                                p["pg_socket_dir"], p["startup_log"])
    if p["state"] == "rolled_back":
        import os
        if not os.path.exists(paths["preserved"]):
            module.exit_json(changed=False, msg="nothing left to roll back (%s is not there: the restore step "
                             "already put it back)" % paths["preserved"],
                             preserved_data_dir=None, steps=[])
        if module.check_mode:
            module.exit_json(changed=True, msg="would move %s back" % paths["preserved"], steps=[])
        outcome = pitr_exec.rollback(runner, server, paths, p["was_running"])
        result = dict(changed=True, rollback=outcome, preserved_data_dir=None, steps=[],
                      failed_data_dir=paths["failed"])
        if not outcome["ok"]:
            module.fail_json(msg="roll-back failed: %s" % "; ".join(outcome["actions"]), **result)
        module.exit_json(msg="; ".join(outcome["actions"]), **result)

    if module.check_mode:
        module.exit_json(changed=True, msg="would restore %s to %s=%s" % (
            plan["base_backup"]["name"], plan["target"]["kind"], plan["target"]["value"]),
            steps=[], preserved_data_dir=paths["preserved"])

    def validate():
        report = server.query(VALIDATION_SQL, dbname=p["db_name"])
        report["rows"] = counts(server, p["db_name"])
        return report

    try:
        result = pitr_exec.restore(runner, server, plan, paths, p["wal_dir"], p["log_file"], plan["pg_major"],
                                   p["extra_settings"], p["progress_file"], p["timeout"],
                                   validate if plan["target"]["action"] == "promote" else None)
    except pitr_exec.ExecError as exc:
        details = dict(exc.details)
        rolled = details.get("rollback") or {}
        where = "; ".join(rolled.get("actions") or []) or "nothing was changed"
        module.fail_json(msg="PITR failed at step '%s': %s. Roll-back: %s" % (exc.step, exc.msg, where),
                         changed=True, failed_step=exc.step, failed_data_dir=paths["failed"], **details)
    result["rows_after"] = (result.get("validation") or {}).get("rows")
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
