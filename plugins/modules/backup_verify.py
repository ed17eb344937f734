#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_verify
short_description: Verify backups - integrity, WAL continuity, offsite copy, policy, window, test restores
version_added: "0.1.0"
author:
  - Health Butler SRE (@healthbutler)
description:
  - Catalogues O(backup_dir) and O(wal_dir) and runs named checks, each OK, WARNING or FAILED with evidence.
  - C(dump_integrity[<name>]) compares the C(.sha256) sidecar, then reads the whole dump with
    C(pg_restore -f /dev/null) (C(pg_restore --list) passes truncated and overwritten dumps).
  - C(base_backup[<name>]) runs C(pg_verifybackup) against the WAL archive; a missing C(backup_manifest) fails.
  - C(wal_continuity) walks every segment from the oldest base backup's start to the newest archived segment
    along the timeline history and names the first missing one.
  - C(wal_archiving) (with O(live)) checks archive_mode, archive_command and pg_stat_archiver.
  - C(offsite_copy) compares every file of the local backups inside the window with O(offsite) by checksum.
  - C(policy_*) judge the catalogue against O(policy) (see the backup_policy_violations filter);
    C(recovery_window) reports the window.
  - With O(test_restore), C(test_restore[<dump>]) restores the newest dump into a scratch cluster on
    O(scratch_port), runs the runbook's 数据验证 queries and compares row counts with the dump metadata.
    With O(pitr), C(pitr_replay[<base>]) recovers a copy of the newest usable base backup on O(scratch_port),
    archiving off, replaying the archive to its end. Scratch clusters live under O(scratch_dir) and are
    always removed.
  - Writes C(report.json), C(junit.xml), C(summary.md) and a Prometheus textfile when O(report_dir) is given.
  - The module does not fail on FAILED checks (the reports must still be written); the role fails the play.
  - Run it as the PostgreSQL OS user (scratch clusters need it).
options:
  wal_dir:
    description:
      - The WAL archive directory (C(hb_wal_archive_dir)); required with O(pitr).
  offsite:
    description: Offsite location (path or C(host:path)); omit to skip the offsite check.
    type: str
  offsite_rsh:
    description: Remote shell for a C(host:path) offsite, given to rsync as C(--rsh) (e.g. C(ssh -p 2222 -i KEYFILE)).
    type: str
  policy:
    description: Policy overrides (C(full_interval_hours), C(incremental_interval_hours), C(grace_hours),
      C(retention_days), C(offsite_required), C(full_kinds)).
    type: dict
    default: {}
  legacy_pattern:
    description: Regular expression for legacy dump names (see backup_catalog).
    type: str
  scope:
    description: Which dumps and base backups get integrity checks.
    type: str
    choices: [all, window, newest]
    default: all
  pg_bindir:
    description:
      - Directory of the PostgreSQL binaries (C(hb_pg_bindir)) for the live check and the scratch clusters;
        looked up on C(PATH) when omitted.
      - It was C(bindir); the old name stays as an alias.
    type: path
    aliases: [bindir]
  live:
    description: Check the live server's archiving (C(host), C(port), C(user), C(password), C(db)).
    type: dict
  test_restore:
    description: Restore the newest dump into a scratch cluster and compare.
    type: bool
    default: false
  pitr:
    description: Recover the newest usable base backup on a scratch port.
    type: bool
    default: false
  amcheck:
    description: Run C(pg_amcheck) on the recovered scratch cluster.
    type: bool
    default: false
  scratch_dir:
    description: Where scratch clusters go (must be reachable by the PostgreSQL OS user).
    type: path
  scratch_port:
    description: Port of the scratch clusters.
    type: int
    default: 55999
  max_window_age:
    description: Seconds after which the end of the recovery window is reported as a WARNING.
    type: int
    default: 3600
  report_dir:
    description: Directory for report.json, junit.xml, summary.md.
    type: path
  textfile:
    description: Path of the Prometheus textfile (default C(report_dir)/backup_verify.prom).
    type: path
  now:
    description: Judge as of this UTC time (ISO-8601); for what-if runs. Default now.
    type: str
extends_documentation_fragment:
  - healthbutler.recovery.backup_location
attributes:
  check_mode:
    support: full
    description: Under C(--check) the module reports what it would do and changes nothing.
notes:
  - Read-only towards backups and the live server; in check mode no scratch cluster is started and no
    report written.
"""

EXAMPLES = r"""
- name: Verify backups nightly
  healthbutler.recovery.backup_verify:
    backup_dir: /var/backups/health_butler
    wal_dir: /var/backups/wal
    offsite: backup-offsite:/srv/offsite/health_butler
    test_restore: true
    pitr: true
    scratch_dir: /var/lib/healthbutler-recovery/scratch
    scratch_port: 55999
    report_dir: /var/lib/healthbutler-recovery/runs/verify
  become: true
  become_user: postgres
  register: backup_verify_result
"""

RETURN = r"""
report:
  description: C(generated_at), C(summary) (C(status), C(counts), C(failed) names), C(checks) (C(name), C(status),
    C(evidence)), C(window) (the recovery_window), C(violations), C(newest) per kind, C(policy), C(catalog).
  returned: always
  type: dict
paths:
  description: Written report files (C(json), C(junit), C(markdown), C(prometheus)).
  returned: when report_dir is set and not in check mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_catalog as bc
from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_checks, backup_report
from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import backup_location, pg_bindir
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import Conn
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import AnsibleRunner


def main():
    module = AnsibleModule(
        argument_spec={
            **backup_location(),
            "offsite": {"type": "str"},
            "offsite_rsh": {"type": "str"},
            "policy": {"type": "dict", "default": {}},
            "legacy_pattern": {"type": "str"},
            "scope": {"type": "str", "default": "all", "choices": ["all", "window", "newest"]},
            **pg_bindir(),
            "live": {"type": "dict", "no_log": False},
            "test_restore": {"type": "bool", "default": False},
            "pitr": {"type": "bool", "default": False},
            "amcheck": {"type": "bool", "default": False},
            "scratch_dir": {"type": "path"},
            "scratch_port": {"type": "int", "default": 55999},
            "max_window_age": {"type": "int", "default": 3600},
            "report_dir": {"type": "path"},
            "textfile": {"type": "path"},
            "now": {"type": "str"},
        },
        required_if=[("test_restore", True, ["scratch_dir"]), ("pitr", True, ["scratch_dir", "wal_dir"])],
        supports_check_mode=True,
    )
    p = dict(module.params)
    try:
        now_ts = bc.epoch(p["now"]) if p["now"] else None
    except ValueError:
        module.fail_json(msg="now must be an ISO-8601 UTC time such as 2026-11-28T03:00:00Z, got %r" % p["now"])
    live = p.pop("live")
    if live:
        if live.get("password"):
            module.no_log_values.add(live["password"])
        p["conn"] = Conn(host=live.get("host"), port=live.get("port", 5432), user=live.get("user"),
                         password=live.get("password"), dbname=live.get("db", "postgres"), bindir=p["pg_bindir"])
    if module.check_mode:
        p["test_restore"] = p["pitr"] = False
    try:
        report = backup_checks.run_all(AnsibleRunner(module), p, now_ts)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    result = {"changed": False, "report": report}
    if p["report_dir"] and not module.check_mode:
        result["paths"] = backup_report.write_all(report, p["report_dir"], p["textfile"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
