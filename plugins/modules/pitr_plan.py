#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Plan a point-in-time recovery; change nothing."""

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: pitr_plan
short_description: Validate a PITR target and plan the recovery (read-only pre-flight)
description:
  - Validates the target (exactly one of O(target.time) with a time zone, O(target.xid),
    O(target.lsn), O(target.name), O(target.immediate)), chooses the base backup by its stop
    point, checks WAL continuity up to the target and that the target lies inside the recoverable
    window, verifies the base backup with C(pg_verifybackup), checks free disk, and counts rows.
  - Fails, changing nothing, with the recoverable window in the message when the target cannot be reached.
  - A C(xid) or restore point C(name) is located in the archived WAL with C(pg_waldump) first.
  - A time without a time zone is always refused (see docs/recover-db.md).
version_added: "1.0.0"
author:
  - Health Butler SRE (@healthbutler)
extends_documentation_fragment:
  - healthbutler.recovery.postgres
  - healthbutler.recovery.backup_location
options:
  target:
    description: The recovery target.
    type: dict
    required: true
    suboptions:
      time: {description: "Time with zone, e.g. C(2026-11-28T10:30:00+08:00) or C(...Z).", type: str}
      xid: {description: Transaction id whose commit ends the recovery., type: str}
      lsn: {description: WAL location C(X/Y)., type: str}
      name: {description: Restore point made with C(pg_create_restore_point())., type: str}
      immediate: {description: Stop as soon as the base backup is consistent., type: bool}
      inclusive: {description: Stop just after (true) or just before (false) the target., type: bool, default: true}
      timeline: {description: "C(current) (the base backup's), C(latest), or a number.", type: raw, default: current}
      action:
        description: What the server does at the target.
        type: str
        default: promote
        choices: [promote, pause, shutdown]
  backup:
    description: Name of the base backup to use; default the newest that stopped before the target.
    type: str
  catalog:
    description:
      - A catalogue as returned by the C(backup_catalog) module. When omitted the module scans
        O(backup_dir) and O(wal_dir) with the same code (C(backup_catalog.scan)).
    type: dict
  wal_dir: {required: true}
  data_dir: {description: The live data directory., type: path, required: true}
  db_name: {description: Database whose rows are counted before the run., type: str, required: true}
  run_stamp:
    description: UTC stamp (C(YYYYmmddTHHMMSSZ)) used in the names of preserved copies.
    type: str
    required: true
  verify_backup: {description: Run C(pg_verifybackup) on the chosen base backup., type: bool, default: true}
attributes:
  check_mode: {support: full, description: Read-only; runs the same in check mode.}
notes:
  - Runs as root (it reads the backup tree and sizes the data directory); SQL runs as O(pg_os_user) over the socket.
"""

EXAMPLES = r"""
- name: Plan a recovery to just before a bad migration
  healthbutler.recovery.pitr_plan:
    target: {time: "2026-11-28T10:30:00+08:00"}
    backup_dir: /var/backups/health_butler
    wal_dir: /var/backups/wal
    data_dir: /var/lib/postgresql/14/main
    pg_bindir: /usr/lib/postgresql/14/bin
    pg_socket_dir: /var/run/postgresql
    db_name: health_butler
    run_stamp: "20261128T103500Z"
  register: pitr
"""

RETURN = r"""
plan:
  description: Chosen base backup, normalised target, recovery timeline, WAL reach, window, expected loss, paths.
  returned: success
  type: dict
window:
  description: Recoverable window (earliest/latest and per base backup); also returned on failure.
  returned: always
  type: dict
plan_lines:
  description: The plan as lines for the operator.
  returned: success
  type: list
  elements: str
rows_before:
  description: Rows per table of O(db_name) now (null when the server is down).
  returned: success
  type: dict
"""

import datetime as dt
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_catalog, pitr_wal
from ansible_collections.healthbutler.recovery.plugins.module_utils import pitr_plan as pp
from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import (
    backup_location,
    postgres_server,
)
from ansible_collections.healthbutler.recovery.plugins.module_utils.pg_restore_run import counts
from ansible_collections.healthbutler.recovery.plugins.module_utils.pitr_exec import PgServer
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import AnsibleRunner, CommandError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            target=dict(type="dict", required=True),
            backup=dict(type="str"),
            catalog=dict(type="dict"),
            **backup_location(wal_required=True),
            data_dir=dict(type="path", required=True),
            **postgres_server(),
            db_name=dict(type="str", required=True),
            run_stamp=dict(type="str", required=True),
            verify_backup=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    runner = AnsibleRunner(module)
    now = dt.datetime.now(dt.timezone.utc)
    catalog = p["catalog"] or backup_catalog.scan(p["backup_dir"], p["wal_dir"], verify_checksums=False)
    try:
        target = pp.parse_target(p["target"], now)
        resolved = None
        if target["kind"] in ("xid", "name"):
            resolved = pp.locate_target(runner, os.path.join(p["pg_bindir"], "pg_waldump"), p["wal_dir"],
                                        catalog, target)
        plan = pitr_wal.plan_with_wal(runner, os.path.join(p["pg_bindir"], "pg_waldump"), p["wal_dir"], catalog,
                                      target, now, p["backup"], resolved)
    except pp.PlanError as exc:
        module.fail_json(msg=exc.msg, field=exc.field, window=exc.window or pp.window(catalog))

    base = plan["base_backup"]
    problems = []
    if p["verify_backup"]:
        # WAL is checked against the archive: a base backup taken with -X none has no WAL of its own.
        res = runner.run([os.path.join(p["pg_bindir"], "pg_verifybackup"), "-q", "-w", p["wal_dir"], base["path"]])
        plan["base_backup"]["verified"] = res.rc == 0
        if res.rc != 0:
            problems.append("base backup %s does not verify (pg_verifybackup rc=%s): %s"
                            % (base["name"], res.rc, (res.stderr or res.stdout).strip()[-800:]))
    version_file = os.path.join(base["path"], "PG_VERSION")
    pg_major = None
    if os.path.exists(version_file):
        with open(version_file, encoding="utf-8") as fh:
            text = fh.read().strip()
        pg_major = int(text) if text.isdigit() else None
    if pg_major is None:
        problems.append("base backup %s has no PG_VERSION: not a data directory copy" % base["name"])
    data_dir = p["data_dir"].rstrip("/")
    paths = {"data_dir": data_dir,
             "preserved": "%s.pre_pitr_%s" % (data_dir, p["run_stamp"]),
             "failed": "%s.failed_pitr_%s" % (data_dir, p["run_stamp"])}
    for key in ("preserved", "failed"):
        if os.path.exists(paths[key]):
            problems.append("%s already exists; use a new run_stamp" % paths[key])
    if not os.path.isdir(data_dir):
        problems.append("data directory %s does not exist" % data_dir)
    st = os.statvfs(os.path.dirname(data_dir))
    free = st.f_bavail * st.f_frsize
    restore_bytes = base.get("size") or backup_catalog.tree_size(base["path"])
    ok, needed = pp.disk_check(free, restore_bytes, 0)
    plan["disk"] = {"free": free, "needed": needed, "restore_bytes": restore_bytes,
                    "preserve_bytes": 0, "note": "the data directory is moved aside by rename (same filesystem)"}
    if not ok:
        problems.append("not enough free disk under %s: %d bytes free, %d needed (base backup %d + margin)"
                        % (os.path.dirname(data_dir), free, needed, restore_bytes))
    if problems:
        module.fail_json(msg="; ".join(problems), plan=plan, window=plan["window"])

    server = PgServer(runner, p["pg_bindir"], p["pg_os_user"], data_dir, p["pg_port"], p["pg_socket_dir"])
    running = server.running()
    rows_before = None
    if running:
        try:
            rows_before = counts(server, p["db_name"])
        except CommandError as exc:
            module.fail_json(msg="cannot count rows in %s before the run: %s" % (p["db_name"], exc.msg))
    plan.update(paths=paths, pg_major=pg_major, server_running=running)
    module.exit_json(changed=False, plan=plan, window=plan["window"], rows_before=rows_before,
                     plan_lines=plan_lines(plan, paths))


def plan_lines(plan, paths):
    t, b = plan["target"], plan["base_backup"]
    located = t.get("located_at") or {}
    newest = plan.get("last_commit") or {}
    instead = t.get("instead_of")
    return [
        "target: %s=%s (inclusive=%s, timeline=%s, action=%s)%s" % (
            t["kind"], t["value"], t["inclusive"], plan["recovery_timeline"], t["action"],
            " located in WAL at %s %s (timeline %s)" % (located.get("lsn"), located.get("time") or "",
                                                        located.get("timeline", plan["recovery_timeline"]))
            if located else ""),
    ] + ([
        "instead of time %s: %s, so the target is the end of the archived WAL" % (instead["time"], instead["why"])
    ] if instead else []) + ([
        "last archived commit: %s (LSN %s)" % (newest.get("time") or newest.get("name"), newest.get("lsn"))
    ] if newest else []) + [
        "base backup: %s (stopped %s at LSN %s, timeline %s)" % (
            b["name"], b["stop_time"], b["stop_lsn"], b["timeline"]),
        "WAL: continuous from %s to %s (%s)" % (b["start_wal"], plan["wal_reach"]["last"], plan["wal_reach"]["time"]),
        "window: %s" % pp.describe_window(plan["window"]),
        "steps: maintenance on, stop app, stop PostgreSQL, move %s aside to %s, copy the base backup, "
        "write recovery settings, start and replay, judge (out of recovery, log, new timeline), "
        "ALTER SYSTEM RESET the recovery settings, check archiving, start app, /health" % (
            paths["data_dir"], paths["preserved"]),
        "preserved: the current data directory at %s (kept until cleanup_preserved.yml)" % paths["preserved"],
        "expected data loss: changes committed after %s up to now (%s) are not in the restored database"
        % (plan["expected_loss"]["from"], plan["expected_loss"]["to"]),
        "disk: %d MB free, %d MB needed" % (plan["disk"]["free"] // 2 ** 20, plan["disk"]["needed"] // 2 ** 20),
    ]


if __name__ == "__main__":
    main()
