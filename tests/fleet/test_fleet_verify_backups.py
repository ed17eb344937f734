"""verify-backups runs on the backup host and judges the copy there, not the db host's files."""

from __future__ import annotations

from fleet_helpers import fleet_play
from harness import wait_for


def test_verify_backups_judges_the_backup_hosts_own_copy(fleet):
    # The db host archives WAL into its own /var/backups/wal ...
    fleet.psql_as_postgres("SELECT pg_switch_wal() FROM (SELECT txid_current()) AS t;")
    def archived_on_db():
        return fleet.ssh("staging-db-1", "sudo -n ls /var/backups/wal").stdout.split()
    assert wait_for(archived_on_db, timeout=30, what="an archived WAL segment on the db host")
    # ... which is not the backup host's: with nothing shipped there yet, its verification fails.
    run = fleet_play("verify-backups.yml")
    assert run.rc != 0
    verdicts = [e["event_data"] for e in run.events if e.get("event") == "runner_on_ok"
                and "Print the verdicts" in e["event_data"].get("task", "")]
    assert [v["host"] for v in verdicts] == ["staging-backup-1"]
    lines = verdicts[0]["res"]["msg"]
    catalog = "FAILED  catalog  0 backups in /var/backups/health_butler, 0 WAL segments in /var/backups/wal"
    assert any(line.startswith(catalog) for line in lines), lines
    assert "Backup verification FAILED: catalog" in run.stdout
    # The report is on the backup host, under its own run-record directory.
    reports = fleet.ssh("staging-backup-1", "ls /var/lib/healthbutler-recovery/runs/backup-verify").stdout.split()
    assert any(name.endswith("Z") for name in reports)
    assert fleet.ssh("staging-db-1", "test -e /var/lib/healthbutler-recovery/runs/backup-verify",
                     check=False).returncode == 1
