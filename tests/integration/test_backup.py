"""Backups on the real sandbox: take them, verify them clean, damage copies for real, prune, schedule.

One fresh backup set per module (full + WAL activity + incremental); every fault is made on a copy.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import socket
import subprocess
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from backup_helpers import (
    backup_vars,
    chown_postgres,
    clone,
    db_fingerprint,
    only,
    private,
    run_verify,
    set_full_backups_back,
    ssh_offsite_host,
    statuses,
    tree_digest,
    wait_archived,
    webhook_receiver,
)
from harness import run_playbook
from prometheus_client.parser import text_string_to_metric_families


@pytest.fixture(scope="module")
def backup_set(sandbox):
    """A fresh full backup (dump + base), WAL written after it, and a 4-hourly incremental."""
    sandbox.ensure_healthy()
    root = os.path.join(sandbox.dir, "bk-itest")
    shutil.rmtree(root, ignore_errors=True)
    tree = os.path.join(root, "fresh")
    os.makedirs(tree)
    chown_postgres(root)
    full = run_playbook("backup.yml", backup_vars(tree))
    assert full.rc == 0, full.stdout[-3000:]
    wait_archived(sandbox, segments=3)
    inc = run_playbook("backup.yml", dict(backup_vars(tree), backup_mode="incremental"))
    assert inc.rc == 0, inc.stdout[-3000:]
    yield {"root": root, "tree": tree, "wal": sandbox["hb_wal_archive_dir"]}
    shutil.rmtree(root, ignore_errors=True)


def test_full_backup_files_follow_the_layout(backup_set, sandbox):
    dumps = os.path.join(backup_set["tree"], "backups", "dumps")
    dump = only(os.path.join(dumps, "health_butler_*Z.dump"))
    with open(dump + ".json", encoding="utf-8") as fh:
        meta = json.load(fh)
    assert meta["tables"]["public.users"] == int(sandbox.scalar("SELECT count(*) FROM users"))
    assert meta["tables"]["public.health_data"] >= 100000
    with open(dump + ".sha256", encoding="utf-8") as fh:
        assert fh.read().split()[1] == os.path.basename(dump)
    assert not glob.glob(os.path.join(backup_set["tree"], "backups", "*", "*.partial"))
    base = only(os.path.join(backup_set["tree"], "backups", "base", "*Z"))
    assert os.path.exists(os.path.join(base, "backup_manifest"))
    bundle = only(os.path.join(backup_set["tree"], "backups", "incremental", "*Z"))
    with open(os.path.join(bundle, "manifest.json"), encoding="utf-8") as fh:
        assert len(json.load(fh)["segments"]) >= 3
    assert tree_digest(os.path.join(backup_set["tree"], "backups")) == tree_digest(
        os.path.join(backup_set["tree"], "offsite"))


def test_clean_verification_passes_changes_nothing_and_reports(backup_set, sandbox):
    newest_segment = wait_archived(sandbox)
    backups_before = [tree_digest(os.path.join(backup_set["tree"], p)) for p in ("backups", "offsite")]
    wal_before = tree_digest(backup_set["wal"])
    db_before = db_fingerprint(sandbox)
    run, report, run_dir = run_verify(backup_set["tree"], backup_set["wal"], scratch=True,
                                      extra={"backup_verify_amcheck": True})
    assert run.rc == 0, run.stdout[-4000:]
    got = statuses(report)
    assert "FAILED" not in got.values(), got
    assert got["recovery_window"] == "OK" and got["wal_continuity"] == "OK" and got["offsite_copy"] == "OK"
    assert any(n.startswith("test_restore[") and s == "OK" for n, s in got.items())
    assert any(n.startswith("pitr_replay[") and s == "OK" for n, s in got.items())
    replayed = [c for c in report["checks"] if c["name"].startswith("pitr_replay[")]
    assert all(c["amcheck"]["rc"] == 0 for c in replayed), replayed  # pg_amcheck ran on the recovered copy
    # the window ends within the archive timeout (60 s in the sandbox) of the run
    latest = report["window"]["latest"]
    assert latest["segment"] == newest_segment
    end = datetime.strptime(latest["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    assert 0 <= report["generated_at_ts"] - end <= 60
    # nothing outside the scratch objects changed
    assert [tree_digest(os.path.join(backup_set["tree"], p)) for p in ("backups", "offsite")] == backups_before
    assert {k: v for k, v in tree_digest(backup_set["wal"]).items() if k in wal_before} == wal_before
    assert db_fingerprint(sandbox) == db_before
    assert os.listdir(os.path.join(os.path.dirname(run_dir), "..", "scratch")) == []
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", int(sandbox["hb_pg_port"]) + 1000)) != 0
    # reports parse with real parsers
    suite = ET.parse(os.path.join(run_dir, "junit.xml")).getroot()
    names = [case.get("name") for case in suite.iter("testcase")]
    assert names == [c["name"] for c in report["checks"]]
    assert {"catalog", "wal_continuity", "wal_archiving", "offsite_copy", "policy_full_backup_age",
            "policy_incremental_interval", "policy_retention", "policy_offsite", "recovery_window"} <= set(names)
    assert suite.get("failures") == "0"
    with open(os.path.join(backup_set["tree"], "reports", "backup_verify.prom"), encoding="utf-8") as fh:
        families = {f.name: f for f in text_string_to_metric_families(fh.read())}
    assert families["hb_backup_verify_last_success_timestamp_seconds"].samples[0].value == pytest.approx(
        report["generated_at_ts"], abs=1)
    assert families["hb_backup_recoverable_until_timestamp_seconds"].samples[0].value == end
    kinds = {s.labels["kind"] for s in families["hb_backup_newest_age_seconds"].samples}
    assert {"dump", "base", "incremental"} <= kinds
    assert len(families["hb_backup_verify_check_status"].samples) == len(names)
    with open(os.path.join(run_dir, "summary.md"), encoding="utf-8") as fh:
        assert "**Result: " in fh.read()


def truncate_middle(tree, _wal):
    """Dump cut in half at write time (sidecar of the cut file): only the full read catches it."""
    dump = only(os.path.join(tree, "backups", "dumps", "*.dump"))
    with open(private(dump), "r+b") as fh:
        fh.truncate(os.path.getsize(dump) // 2)
    with open(dump, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    with open(private(dump + ".sha256"), "w", encoding="utf-8") as fh:
        fh.write("%s  %s\n" % (digest, os.path.basename(dump)))
    return "dump_integrity[%s]" % os.path.basename(dump), "pg_restore"


def overwrite_4k(tree, _wal):
    dump = only(os.path.join(tree, "backups", "dumps", "*.dump"))
    with open(private(dump), "r+b") as fh:
        fh.seek(os.path.getsize(dump) // 2)
        fh.write(os.urandom(4096))
    return "dump_integrity[%s]" % os.path.basename(dump), "sidecar"


def empty_dump(tree, _wal):
    dump = only(os.path.join(tree, "backups", "dumps", "*.dump"))
    os.unlink(dump)
    open(dump, "w").close()
    return "dump_integrity[%s]" % os.path.basename(dump), "empty"


def change_base_file(tree, _wal):
    base = only(os.path.join(tree, "backups", "base", "*Z"))
    victim = os.path.join(base, "global", "pg_control")
    with open(private(victim), "r+b") as fh:
        fh.seek(100)
        fh.write(b"\xde\xad\xbe\xef")
    return "base_backup[%s]" % os.path.basename(base), "pg_control"


def remove_manifest(tree, _wal):
    base = only(os.path.join(tree, "backups", "base", "*Z"))
    os.remove(os.path.join(base, "backup_manifest"))
    return "base_backup[%s]" % os.path.basename(base), "backup_manifest"


def remove_middle_segment(tree, wal):
    with open(only(os.path.join(tree, "backups", "base", "*Z.json")), encoding="utf-8") as fh:
        start = json.load(fh)["start_wal"]
    segments = sorted(n for n in os.listdir(wal) if len(n) == 24 and n >= start)
    victim = segments[len(segments) // 2]
    assert victim not in (segments[0], segments[-1])
    os.remove(os.path.join(wal, victim))
    return "wal_continuity", victim


def full_30h_old(tree, wal):
    set_full_backups_back(tree, wal, 30)
    return "policy_full_backup_age", "h old (limit 24 h"


def missing_incremental(tree, _wal):
    """Bundles 9 h and 5 h ago and now; the one 5 h ago goes missing: a 9 h gap."""
    folder = os.path.join(tree, "backups", "incremental")
    real = only(os.path.join(folder, "*Z"))
    now = datetime.now(timezone.utc)
    for hours in (9, 5):
        stamp = now - timedelta(hours=hours)
        copy = os.path.join(folder, stamp.strftime("%Y%m%dT%H%M%SZ"))
        subprocess.run(["cp", "-al", real, copy], check=True)
        with open(os.path.join(copy, "manifest.json"), encoding="utf-8") as fh:
            manifest = json.load(fh)
        manifest["time"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        with open(private(os.path.join(copy, "manifest.json")), "w", encoding="utf-8") as fh:
            json.dump(manifest, fh)
    shutil.rmtree(os.path.join(folder, (now - timedelta(hours=5)).strftime("%Y%m%dT%H%M%SZ")))
    return "policy_incremental_interval", "without an incremental"


def offsite_differs(tree, _wal):
    dump = only(os.path.join(tree, "offsite", "dumps", "*.dump"))
    with open(private(dump), "r+b") as fh:
        fh.seek(1000)
        fh.write(b"XXXX")
    return "offsite_copy", "(mismatch)"


FAULTS = [truncate_middle, overwrite_4k, change_base_file, remove_manifest, remove_middle_segment,
          full_30h_old, missing_incremental, offsite_differs, empty_dump]


@pytest.fixture(scope="module")
def fault_runs(backup_set):
    """Each fault on its own hard-linked copy, verified by a real play (three plays at a time)."""
    prepared = {}
    for fault in FAULTS:
        dest = os.path.join(backup_set["root"], fault.__name__)
        wal = clone(backup_set["tree"], backup_set["wal"], dest)
        prepared[fault.__name__] = (dest, wal, fault(dest, wal))
        chown_postgres(dest)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(run_verify, dest, wal) for name, (dest, wal, _unused) in prepared.items()}
        results = {name: (future.result(), prepared[name][2]) for name, future in futures.items()}
    yield results
    for dest, _wal, _expected in prepared.values():
        shutil.rmtree(dest, ignore_errors=True)


@pytest.mark.parametrize("fault", FAULTS, ids=[f.__name__ for f in FAULTS])
def test_real_damage_is_failed_by_name(fault_runs, fault):
    (run, report, _run_dir), (check_name, evidence) = fault_runs[fault.__name__]
    assert run.rc != 0, "the play must fail"
    got = statuses(report)
    assert got.get(check_name) == "FAILED", got
    detail = next(c for c in report["checks"] if c["name"] == check_name)
    assert evidence in detail["evidence"], detail
    assert check_name in run.stdout  # the play's failure message names the check


def test_retention_on_a_40_day_tree_keeps_exactly_the_policy_set(sandbox):
    from backup_fixtures import make_base, make_dump, make_incremental, make_wal

    root = os.path.join(sandbox.dir, "bk-retention")
    shutil.rmtree(root, ignore_errors=True)
    tree, wal = os.path.join(root, "backups"), os.path.join(root, "wal")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start_of = {}
    for day in range(40, -1, -1):
        ts = now - timedelta(days=day, hours=-1)
        make_dump(tree, ts)
        make_base(tree, ts, 2 * (40 - day) + 2)
        start_of[day] = 2 * (40 - day) + 2
        make_wal(wal, 1, [2 * (40 - day) + 1, 2 * (40 - day) + 2], ts - timedelta(minutes=30),
                 step=timedelta(minutes=20))
    make_incremental(tree, now - timedelta(days=38), wal, ["000000010000000000000005"])
    make_incremental(tree, now - timedelta(hours=2), wal, ["000000010000000000000051"])
    chown_postgres(root)
    before = set(tree_digest(root))
    extra = {"backup_mode": "retention", "backup_dir": tree, "backup_wal_dir": wal, "backup_offsite": ""}
    dry = run_playbook("backup.yml", extra, check=True)
    assert dry.rc == 0, dry.stdout[-3000:]
    assert set(tree_digest(root)) == before
    planned = dry.task_results("Prune past the retention window")[0]["removed"]
    run = run_playbook("backup.yml", extra)
    assert run.rc == 0, run.stdout[-3000:]
    assert "Removed" in run.stdout and planned == run.task_results("Prune past the retention window")[0]["removed"]
    # policy: 30 days kept, plus the newest of each kind older than the window (day 31), and WAL from its start
    keep_days = range(0, 32)
    stamps = {(now - timedelta(days=d, hours=-1)).strftime("%Y%m%dT%H%M%SZ") for d in keep_days}
    expected = set()
    for stamp in stamps:
        expected |= {"dumps/health_butler_%s.dump%s" % (stamp, s) for s in ("", ".sha256", ".json")}
        expected |= {"base/%s.json" % stamp, "base/%s/PG_VERSION" % stamp, "base/%s/backup_label" % stamp,
                     "base/%s/backup_manifest" % stamp}
    recent_bundle = (now - timedelta(hours=2)).strftime("%Y%m%dT%H%M%SZ")
    expected |= {"incremental/%s/manifest.json" % recent_bundle, "incremental/%s/000000010000000000000051"
                 % recent_bundle}
    assert set(tree_digest(tree)) == expected
    first_needed = start_of[31]
    assert sorted(os.listdir(wal)) == ["00000001%016X" % n for n in range(first_needed, 2 * 40 + 3)]
    shutil.rmtree(root, ignore_errors=True)


def test_schedules_install_the_runbook_times(sandbox, tmp_path):
    cron_backup = str(tmp_path / "hb-backup.cron")
    cron_verify = str(tmp_path / "hb-verify.cron")
    env = {"HB_PORT_OFFSET": os.environ.get("HB_PORT_OFFSET", "0")}
    run = run_playbook("backup.yml", {"backup_mode": "schedule", "backup_scheduler": "cron",
                                      "backup_cron_file": cron_backup, "backup_schedule_environment": env})
    assert run.rc == 0, run.stdout[-3000:]
    runner_dir = str(tmp_path / "runner")
    run = run_playbook("verify_backups.yml", {"backup_verify_schedule": True, "backup_verify_cron_file": cron_verify,
                                              "backup_verify_runner_dir": runner_dir,
                                              "backup_verify_schedule_environment": env})
    assert run.rc == 0, run.stdout[-3000:]
    with open(cron_backup, encoding="utf-8") as fh:
        lines = [line for line in fh.read().splitlines() if line and not line.startswith("#")]
    assert any(line.startswith("0 3 * * * root ") and "backup_mode=full" in line for line in lines), lines
    assert any(line.startswith("15 */4 * * * root ") and "backup_mode=incremental" in line for line in lines)
    # By FQCN from the collection this run used: no checkout, no cd, no ansible.cfg of a project dir.
    assert all("HB_PORT_OFFSET=" in line and "/ansible-playbook -i " in line
               and " healthbutler.recovery.backup " in line and "ANSIBLE_COLLECTIONS_PATH=" in line
               and "cd " not in line and "ANSIBLE_CONFIG" not in line
               for line in lines), lines
    with open(cron_verify, encoding="utf-8") as fh:
        verify_line = [line for line in fh.read().splitlines() if line and not line.startswith("#")]
    assert len(verify_line) == 1 and verify_line[0].startswith("30 4 * * * root ")
    assert "/ansible-runner run " in verify_line[0]
    assert "-p healthbutler.recovery.verify_backups " in verify_line[0] and "--project-dir" not in verify_line[0]
    with open(os.path.join(runner_dir, "env", "envvars"), encoding="utf-8") as fh:
        envvars = yaml.safe_load(fh)
    assert os.path.isdir(os.path.join(envvars["ANSIBLE_COLLECTIONS_PATH"], "ansible_collections", "healthbutler",
                                      "recovery", "playbooks")) and "ANSIBLE_CONFIG" not in envvars
    run = run_playbook("backup.yml", {"backup_mode": "unschedule", "backup_cron_file": cron_backup})
    assert run.rc == 0
    assert not os.path.exists(cron_backup)  # the cron module removes a file it emptied
    os.remove(cron_verify)


def test_offsite_over_ssh_copies_verifies_and_catches_damage(backup_set, sandbox):
    """host:path offsite through a real sshd: the 4-hourly run copies, verification compares by checksum;
    the webhook is posted to only when verification fails."""
    tree = backup_set["tree"]
    remote_dir = os.path.join(backup_set["root"], "offsite-host")
    os.makedirs(remote_dir)
    chown_postgres(remote_dir)
    with ssh_offsite_host(os.path.join(backup_set["root"], "ssh")) as host:
        dest = "%s:%s" % (host["login"], remote_dir)
        wait_archived(sandbox)
        run = run_playbook("backup.yml", dict(backup_vars(tree), backup_mode="incremental", backup_offsite=dest,
                                              backup_offsite_rsh=host["rsh"]))
        assert run.rc == 0, run.stdout[-3000:]
        local = tree_digest(os.path.join(tree, "backups"))
        remote = tree_digest(remote_dir)
        copied = [p for p in local if p.split(os.sep)[0] in ("dumps", "base", "incremental")]
        assert copied and all(remote[p][:2] == local[p][:2] for p in copied)  # same size and sha256

        with webhook_receiver() as (url, posts):
            ssh_vars = {"backup_verify_offsite": dest, "backup_verify_offsite_rsh": host["rsh"],
                        "backup_verify_webhook_url": url}
            run, report, _unused = run_verify(tree, backup_set["wal"], extra=ssh_vars)
            assert run.rc == 0 and statuses(report)["offsite_copy"] == "OK", run.stdout[-3000:]
            assert posts == []

            dump = only(os.path.join(remote_dir, "dumps", "health_butler_*Z.dump"))
            with open(dump, "r+b") as fh:  # 4 KB overwritten inside the offsite dump
                fh.seek(os.path.getsize(dump) // 2)
                fh.write(os.urandom(4096))
            run, report, run_dir = run_verify(tree, backup_set["wal"], extra=ssh_vars)
            assert run.rc != 0 and statuses(report)["offsite_copy"] == "FAILED"
            offsite = [c for c in report["checks"] if c["name"] == "offsite_copy"][0]
            assert os.path.basename(dump) in json.dumps(offsite)
            assert len(posts) == 1 and posts[0]["status"] == "FAILED" and "offsite_copy" in posts[0]["failed"]
            assert posts[0]["report_dir"] == run_dir


def test_systemd_timers_are_valid_units_at_the_runbook_times(sandbox, tmp_path):
    """No systemd runs here: the units are checked by systemd's own parser and calendar."""
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    timer_vars = {"backup_scheduler": "systemd", "backup_systemd_dir": str(unit_dir), "backup_systemd_enable": False,
                  "backup_schedule_environment": {"HB_PORT_OFFSET": os.environ.get("HB_PORT_OFFSET", "0")}}
    run = run_playbook("backup.yml", dict(timer_vars, backup_mode="schedule"))
    assert run.rc == 0, run.stdout[-3000:]
    units = sorted(os.listdir(unit_dir))
    assert units == ["healthbutler-backup-full.service", "healthbutler-backup-full.timer",
                     "healthbutler-backup-incremental.service", "healthbutler-backup-incremental.timer"]
    checked = subprocess.run(["systemd-analyze", "verify"] + [str(unit_dir / u) for u in units],
                             check=False, capture_output=True, text=True)
    assert checked.returncode == 0 and checked.stderr.strip() == "", checked.stderr  # warnings count too

    def next_elapses(timer):
        spec = [line.split("=", 1)[1] for line in (unit_dir / timer).read_text().splitlines()
                if line.startswith("OnCalendar=")][0]
        out = subprocess.run(["systemd-analyze", "calendar", "--iterations=7", spec], capture_output=True,
                             text=True, check=True).stdout
        return [line.split()[-2] for line in out.splitlines() if "Next elapse" in line or "Iter." in line]

    assert set(next_elapses("healthbutler-backup-full.timer")) == {"03:00:00"}
    assert sorted(set(next_elapses("healthbutler-backup-incremental.timer"))) == [
        "%02d:15:00" % h for h in (0, 4, 8, 12, 16, 20)]
    service = (unit_dir / "healthbutler-backup-incremental.service").read_text()
    assert "backup_mode=incremental" in service and " healthbutler.recovery.backup " in service and "cd " not in service

    run = run_playbook("backup.yml", dict(timer_vars, backup_mode="unschedule"))
    assert run.rc == 0, run.stdout[-3000:]
    assert os.listdir(unit_dir) == []
