"""Backups on the fleet: written on the db host, pulled by the backup host, verified there, fetched back.

The tests run in order and share the fleet: verification of the still empty copy, a backup and its
shipping, verification of the copy, a PITR from the backup host's copy, a dump recovery.
"""

from __future__ import annotations

import json
import time
import uuid

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
    catalog = ("FAILED  catalog  WAL archive directory /var/backups/wal does not exist; "
               "0 backups in /var/backups/health_butler, 0 WAL segments in /var/backups/wal")
    assert any(line.startswith(catalog) for line in lines), lines
    assert "Backup verification FAILED: catalog" in run.stdout
    # The report is on the backup host, under its own run-record directory.
    reports = fleet.ssh("staging-backup-1", "ls /var/lib/healthbutler-recovery/runs/backup-verify").stdout.split()
    assert any(name.endswith("Z") for name in reports)
    assert fleet.ssh("staging-db-1", "test -e /var/lib/healthbutler-recovery/runs/backup-verify",
                     check=False).returncode == 1


# -- the backup topology (docs/backup-topology.md): written on the db host, pulled by the backup host ----

def newest(fleet, host, pattern):
    """Newest path matching the shell glob ``pattern`` on ``host`` (as root), or ''."""
    return fleet.ssh(host, "sudo -n sh -c 'ls -1d %s 2>/dev/null | sort | tail -1'" % pattern).stdout.strip()


def sha256(fleet, host, path):
    return fleet.ssh(host, "sudo -n sha256sum %s" % path).stdout.split()[0]


def pulled(run, source):
    """Every path the backup_pull tasks of ``run`` copied from ``source``."""
    return [path for res in run.task_results("Pull from " + source)
            for item in res.get("results", []) for path in item.get("copied", [])]


def test_a_backup_reaches_the_backup_host_only_when_the_backup_role_ships_it(fleet):
    take = fleet_play("backup.yml", {"backup_ship": False})
    assert take.rc == 0, take.stdout[-3000:]
    dump = newest(fleet, "staging-db-1", "/var/backups/health_butler/dumps/*.dump")
    base = newest(fleet, "staging-db-1", "/var/backups/health_butler/base/*Z")
    assert dump and base
    # Written on the db host, absent on the backup host ...
    for path in (dump, base + "/backup_manifest"):
        assert fleet.ssh("staging-backup-1", "sudo -n test -e %s" % path, check=False).returncode == 1, path
    # ... each app host's uploads and .env backed up on that host.
    app_files = {h: newest(fleet, h, "/var/backups/health_butler/files/*Z") for h in fleet.groups["app"]}
    assert all(app_files.values()), app_files

    ship = fleet_play("backup.yml", {"backup_mode": "ship"})
    assert ship.rc == 0, ship.stdout[-3000:]
    assert [h for h, n in (ship.stats.get("changed") or {}).items() if n] == ["staging-backup-1"]
    # Now the backup host holds byte-identical copies, owned by postgres, private.
    assert sha256(fleet, "staging-backup-1", dump) == sha256(fleet, "staging-db-1", dump)
    manifest = base + "/backup_manifest"
    assert sha256(fleet, "staging-backup-1", manifest) == sha256(fleet, "staging-db-1", manifest)
    segments = fleet.ssh("staging-db-1", "sudo -n ls /var/backups/wal").stdout.split()
    shipped = fleet.ssh("staging-backup-1", "sudo -n ls /var/backups/wal").stdout.split()
    assert segments and set(s for s in segments if not s.endswith(".tmp")) <= set(shipped)
    for host, stamp_dir in app_files.items():
        copy = "/var/backups/health_butler/hosts/%s/files/%s" % (host, stamp_dir.rsplit("/", 1)[1])
        mode = fleet.ssh("staging-backup-1", "sudo -n stat -c '%%U %%a' %s/env" % copy).stdout.split()
        assert mode == ["postgres", "600"], (host, mode)
        assert sha256(fleet, "staging-backup-1", copy + "/env") == sha256(fleet, host, stamp_dir + "/env")
    # The link is read-only: the backup host's key cannot write on the db host, nor open a shell there.
    key = "/var/lib/postgresql/.ssh/hb_backup_ed25519"
    known = "/var/lib/postgresql/.ssh/hb_backup_known_hosts"
    rsh = "ssh -i %s -o BatchMode=yes -o UserKnownHostsFile=%s" % (key, known)
    db = fleet.address("staging-db-1")
    push = fleet.ssh("staging-backup-1", "sudo -n -u postgres rsync -rt -e '%s' /etc/hostname "
                     "deploy@%s:health_butler/x" % (rsh, db), check=False)
    assert push.returncode != 0 and "read-only" in push.stderr, push.stderr
    shell = fleet.ssh("staging-backup-1", "sudo -n -u postgres %s deploy@%s id" % (rsh, db), check=False)
    assert shell.returncode != 0 and "uid=" not in shell.stdout
    assert fleet.ssh("staging-db-1", "sudo -n test -e /var/backups/health_butler/x", check=False).returncode == 1


def test_verify_backups_passes_on_the_backup_hosts_copy(fleet):
    run = fleet_play("verify-backups.yml")
    assert run.rc == 0, run.stdout[-3000:]
    lines = [v["msg"] for v in run.task_results("Print the verdicts")][0]
    assert any(line.startswith("OK  test_restore[") for line in lines), lines
    assert any(line.startswith("OK  pitr_replay[") for line in lines), lines


def test_restore_files_brings_an_app_hosts_uploads_back_from_the_backup_host(fleet):
    lost = "/app/uploads/avatars/user-01.jpg"
    mode_before = fleet.ssh("staging-app-1", "stat -c '%%U %%a' %s" % lost).stdout.split()
    aside = "lost-%s" % uuid.uuid4().hex[:8]
    # The app host lost the file and its own file backups: only the backup host's copy can bring it back.
    fleet.ssh("staging-app-1", "rm %s && sudo -n mv /var/backups/health_butler /var/backups/health_butler.%s"
              % (lost, aside))
    untouched = fleet.ssh("staging-app-2", "sha256sum %s" % lost).stdout.split()[0]
    run = fleet_play("restore-files.yml", limit="staging-app-1")
    assert run.rc == 0, run.stdout[-3000:]
    files = "/var/backups/health_butler/hosts/staging-app-1/files"
    stamp = newest(fleet, "staging-backup-1", files + "/*Z").rsplit("/", 1)[1]
    copied = pulled(run, "staging-backup-1")
    assert "%s/uploads/avatars/user-01.jpg" % stamp in copied, copied[:10]
    backup_copy = "%s/%s/uploads/avatars/user-01.jpg" % (files, stamp)
    restored = fleet.ssh("staging-app-1", "sha256sum %s" % lost).stdout.split()[0]
    assert restored == sha256(fleet, "staging-backup-1", backup_copy)
    assert fleet.ssh("staging-app-1", "stat -c '%%U %%a' %s" % lost).stdout.split() == mode_before
    assert fleet.ssh("staging-app-2", "sha256sum %s" % lost).stdout.split()[0] == untouched
    assert fleet.http("staging-app-1", "/health")[0] == 200


def test_pitr_on_the_fleet_restores_exactly_the_rows_up_to_the_target_from_the_backup_hosts_copy(fleet):
    def write(host, n):
        ids = []
        for i in range(n):
            status, row = fleet.http(host, "/api/health-data", "POST", {"metric": "steps", "value": 7000 + i})
            assert status == 201, row
            ids.append(row["id"])
        return ids

    kept = write("staging-app-1", 3)
    at_target = json.loads(fleet.psql_as_postgres(
        "SELECT json_build_object('t', to_char(clock_timestamp() AT TIME ZONE 'UTC',"
        " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), 'n', count(*), 'max', max(id)) FROM health_data;"))
    time.sleep(1.2)
    lost = write("staging-app-2", 3)
    segment = fleet.psql_as_postgres("SELECT pg_walfile_name(pg_switch_wal());")
    archived = "sudo -n test -f /var/backups/wal/%s" % segment
    wait_for(lambda: fleet.ssh("staging-db-1", archived, check=False).returncode == 0,
             timeout=60, what="segment %s archived on the db host" % segment)
    ship = fleet_play("backup.yml", {"backup_mode": "ship"})
    assert ship.rc == 0, ship.stdout[-3000:]
    # The db host loses its own copies (moved aside, as an operator would find them gone): the
    # base backup and the WAL can only come from the backup host.
    aside = "lost-%s" % uuid.uuid4().hex[:8]
    fleet.ssh("staging-db-1", "sudo -n sh -c 'mv /var/backups/health_butler /var/backups/health_butler.%s && "
              "mv /var/backups/wal /var/backups/wal.%s && install -d -o postgres -m 0700 /var/backups/wal'"
              % (aside, aside))

    run = fleet_play("recover-db.yml", {"recover_mode": "pitr", "target": {"time": at_target["t"]}})
    assert run.rc == 0, run.stdout[-5000:]
    copied = pulled(run, "staging-backup-1")
    assert any(p.startswith("base/") and p.endswith("backup_manifest") for p in copied), copied
    assert segment in copied, (segment, copied[:20])
    # Exactly the rows committed up to the target: those written before it, none written after.
    after = json.loads(fleet.psql_as_postgres(
        "SELECT json_build_object('n', count(*), 'max', max(id), 'kept', count(*) FILTER (WHERE id IN (%s)),"
        " 'lost', count(*) FILTER (WHERE id IN (%s))) FROM health_data;"
        % (",".join(map(str, kept)), ",".join(map(str, lost)))))
    assert after == {"n": at_target["n"], "max": at_target["max"], "kept": 3, "lost": 0}
    for host in fleet.groups["app"]:
        assert wait_for(lambda h=host: fleet.http(h, "/health")[0] == 200, timeout=60, what="%s healthy" % host)


def test_dump_recovery_on_the_fleet_restores_the_dumps_rows_and_keeps_the_old_database(fleet):
    dump = newest(fleet, "staging-db-1", "/var/backups/health_butler/dumps/health_butler_2*.dump")
    meta = json.loads(fleet.ssh("staging-db-1", "sudo -n cat %s" % dump + ".json").stdout)
    fleet.psql_as_postgres("DELETE FROM health_data WHERE id IN (SELECT id FROM health_data ORDER BY id LIMIT 500);")
    run = fleet_play("recover-db.yml", {"recover_mode": "dump", "dump": dump.rsplit("/", 1)[1]})
    assert run.rc == 0, run.stdout[-5000:]
    counts = json.loads(fleet.psql_as_postgres(
        "SELECT json_build_object('public.health_data', (SELECT count(*) FROM health_data),"
        " 'public.users', (SELECT count(*) FROM users));"))
    assert counts == {k: v for k, v in meta["tables"].items() if k in counts}, (counts, meta["tables"])
    preserved = fleet.psql_as_postgres(
        "SELECT datname FROM pg_database WHERE datname LIKE 'health_butler_pre_restore_%' ORDER BY 1 DESC LIMIT 1;")
    assert preserved
    for host in fleet.groups["app"]:
        assert fleet.http(host, "/health")[0] == 200, host
