"""recover_db.yml on the real sandbox: PITR to each target kind, dump mode, refusals, faults, --check.

One module-scoped history is written once: batch 1, a base backup, batch 2, a restore point,
batch 3 (each with known xid / commit LSN / time), WAL switched and archived. Every PITR uses
that one base backup. Tests run in file order: --check and refusals before any recovery.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time

import pytest
import recoverdb_helpers as h
from harness import ROOT, run_playbook

BATCH = 40
TAGS = ("rdb-batch-1", "rdb-batch-2", "rdb-batch-3")
FAST = {"recover_db_health_retries": 15}


def recover(extravars, **kw):
    return run_playbook("recover_db.yml", dict(FAST, **extravars), **kw)


def pitr(target, check=False, **extra):
    return recover(dict({"recover_mode": "pitr", "target": target}, **extra), check=check)


def state(box):
    """What must not change when a run is refused or rolled back."""
    return {"rows": h.table_counts(box), "batches": h.batch_counts(box, TAGS), "data_dir": h.data_dir_fingerprint(box),
            "preserved": h.preserved_dirs(box),
            "databases": box.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")}


def wait_archived(box, lsn, timeout=60):
    """Switch WAL and wait until the segment holding ``lsn`` is in the archive."""
    tli = int(box.scalar("SELECT timeline_id FROM pg_control_checkpoint()"))
    box.psql("SELECT pg_switch_wal()")
    seg = h.segment_of(lsn, tli)
    deadline = time.monotonic() + timeout
    while not os.path.exists(os.path.join(box["hb_wal_archive_dir"], seg)):
        assert time.monotonic() < deadline, "segment %s not archived" % seg
        time.sleep(0.2)
    return seg


@pytest.fixture(scope="module")
def history(sandbox):
    sandbox.ensure_healthy()
    box = sandbox
    box.psql("DELETE FROM health_data WHERE metric LIKE 'rdb-%'")  # a kept sandbox may hold an earlier run's
    out = {"batch1": h.insert_batch(box, TAGS[0], BATCH)}
    out["base"] = h.make_base_backup(box)
    time.sleep(1.1)
    out["batch2"] = h.insert_batch(box, TAGS[1], BATCH)
    box.psql("SELECT pg_create_restore_point('rdb-after-batch-2')")
    time.sleep(1.1)
    out["target_time"] = h.iso_now()
    time.sleep(1.1)
    out["batch3"] = h.insert_batch(box, TAGS[2], BATCH)
    out["batch2_segment"] = wait_archived(box, out["batch2"]["lsn"])
    wait_archived(box, out["batch3"]["lsn"])
    assert h.batch_counts(box, TAGS) == dict.fromkeys(TAGS, BATCH)
    return out


def assert_unchanged(box, before, run, restarted=False):
    """Rows, databases, data directory (inode, system id, timeline; pid unless it was restarted)."""
    after = state(box)
    if restarted:
        before["data_dir"]["pid"] = after["data_dir"]["pid"] = None
    assert after == before, run.stdout[-3000:]
    assert box.http("/health")[0] == 200


def failure_text(run):
    return run.stdout


# -- (5) --check ------------------------------------------------------------------------------

def test_check_mode_prints_the_plan_and_changes_nothing(history, sandbox):
    before = state(sandbox)
    pm2_before = sandbox.pm2_process()["pm2_env"]["status"]
    run = pitr({"time": history["target_time"]}, check=True)
    assert run.rc == 0, run.stdout[-3000:]
    assert "base backup: %s" % history["base"] in run.stdout
    assert "expected data loss" in run.stdout and "preserved:" in run.stdout
    assert run.changed == 0
    assert_unchanged(sandbox, before, run)
    assert sandbox.pm2_process()["pm2_env"]["status"] == pm2_before == "online"
    assert not os.path.exists(sandbox["hb_app_maintenance_flag"])


# -- (3) refusals before any change ---------------------------------------------------------------

REFUSALS = [
    ("before-oldest-stop", {"time": "2020-01-01T00:00:00Z"}, "earliest"),
    ("future", {"time": "2099-01-01T00:00:00+00:00"}, "in the future"),
    ("no-zone", {"time": "2026-01-02 10:30:00"}, "has no time zone"),
    ("two-kinds", {"time": "2026-01-02T10:30:00Z", "xid": "1234"}, "exactly one kind"),
    ("bad-lsn", {"lsn": "0/XYZ"}, "not an LSN like 0/3000028"),
    ("bad-xid", {"xid": "12a"}, "not a transaction id"),
    ("unknown-xid", {"xid": "4000000000"}, "has no commit of transaction 4000000000"),
]


@pytest.mark.parametrize("case,target,needle", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_malformed_or_unreachable_targets_are_refused(history, sandbox, case, target, needle):
    before = state(sandbox)
    run = pitr(target)
    assert run.rc != 0
    assert needle in failure_text(run), run.stdout[-3000:]
    if case == "before-oldest-stop":
        assert "recoverable window: earliest" in run.stdout and "latest" in run.stdout
    assert_unchanged(sandbox, before, run)


BAD_INPUTS = [
    ("jobs=-1", {"recover_mode": "dump", "jobs": -1},
     'jobs must be a whole number from 0 (one per core of the db host) to 256, got "-1". Example: -e jobs=4'),
    ("target=now", {"recover_mode": "pitr", "target": "now"},
     'target must be a dict with exactly one of time/xid/lsn/name/immediate, e.g. -e {"target": {"time": '
     '"2026-11-28T10:30:00+08:00"}}'),
    ("timeout=soon", {"recover_mode": "dump", "timeout": "soon"},
     'timeout must be a whole number of seconds (at least 1), got "soon". Example: -e timeout=7200'),
    ("strategy", {"recover_mode": "dump", "strategy": "over"}, 'strategy must be beside or in_place, got "over"'),
]


@pytest.mark.parametrize("case,extravars,message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_are_refused_before_any_change_in_the_names_typed(history, sandbox, case, extravars, message):
    before = state(sandbox)
    run = recover(extravars)
    assert run.rc != 0 and message in run.stdout, run.stdout[-3000:]
    error = next(line for line in run.stdout.splitlines() if "[ERROR]: Task failed" in line)
    assert "recover_db_" not in error  # the internal variable names stay out of the message
    assert "Put the app in maintenance mode" not in run.stdout  # refused in pre-flight, before the first change
    assert_unchanged(sandbox, before, run)


def test_verify_backups_says_a_missing_wal_directory_is_missing(history, sandbox):
    run = run_playbook("verify_backups.yml", {"backup_verify_wal_dir": "/nonexistent-wal",
                                              "backup_verify_test_restore": False, "backup_verify_pitr": False})
    assert "WAL archive directory /nonexistent-wal does not exist" in run.stdout, run.stdout[-3000:]


def test_target_after_the_newest_archived_wal_is_refused_with_the_window(history, sandbox):
    # archive_timeout off while the test runs, so the segment holding the new row stays unarchived
    sandbox.psql("ALTER SYSTEM SET archive_timeout = 0; SELECT pg_reload_conf()")
    try:
        sandbox.psql("INSERT INTO health_data (user_id, metric, value) VALUES (1, 'rdb-unarchived', 1)")
        time.sleep(0.3)
        before = state(sandbox)
        run = pitr({"time": h.iso_now()})
    finally:
        sandbox.psql("ALTER SYSTEM RESET archive_timeout; SELECT pg_reload_conf()")
    assert run.rc != 0
    assert "after the newest continuously archived WAL" in run.stdout, run.stdout[-3000:]
    assert "recoverable window: earliest" in run.stdout
    sandbox.psql("DELETE FROM health_data WHERE metric = 'rdb-unarchived'")
    before["rows"] = h.table_counts(sandbox)
    assert_unchanged(sandbox, before, run)


def test_nonexistent_and_corrupt_base_backups_are_refused(history, sandbox):
    before = state(sandbox)
    run = pitr({"immediate": True}, backup="20000101T000000Z")
    assert run.rc != 0 and "is not in the catalogue; base backups: " in run.stdout, run.stdout[-3000:]
    assert history["base"] in run.stdout
    base_root = os.path.join(sandbox["hb_backup_dir"], "base")
    bad = "29990101T000000Z"
    try:
        shutil.copytree(os.path.join(base_root, history["base"]), os.path.join(base_root, bad), symlinks=True)
        shutil.copy(os.path.join(base_root, history["base"] + ".json"), os.path.join(base_root, bad + ".json"))
        with open(os.path.join(base_root, bad, "PG_VERSION"), "a", encoding="utf-8") as fh:
            fh.write("tampered\n")
        run2 = pitr({"immediate": True}, backup=bad)
    finally:
        shutil.rmtree(os.path.join(base_root, bad), ignore_errors=True)
        os.unlink(os.path.join(base_root, bad + ".json"))
    assert run2.rc != 0 and "does not verify (pg_verifybackup" in run2.stdout, run2.stdout[-3000:]
    assert_unchanged(sandbox, before, run2)


def test_a_wal_gap_between_backup_and_target_is_refused(history, sandbox):
    # A later segment must be archived too, or removing batch 2's segment only shortens the archive.
    wait_archived(sandbox, sandbox.scalar("SELECT pg_current_wal_lsn()"))
    before = state(sandbox)
    seg = os.path.join(sandbox["hb_wal_archive_dir"], history["batch2_segment"])
    aside = seg + ".rdb-test-aside"
    os.rename(seg, aside)
    try:
        run = pitr({"time": history["target_time"]})
    finally:
        os.rename(aside, seg)
    assert run.rc != 0
    assert "segment %s is missing" % history["batch2_segment"] in run.stdout, run.stdout[-3000:]
    assert_unchanged(sandbox, before, run)


def test_production_group_is_refused_without_confirm(history, sandbox):
    before = state(sandbox)
    inv = tempfile.mkdtemp(prefix="rdb-prod-inv-")
    try:
        os.symlink(os.path.join(ROOT, "inventories", "sandbox", "group_vars"), os.path.join(inv, "group_vars"))
        with open(os.path.join(inv, "hosts.yml"), "w", encoding="utf-8") as fh:
            fh.write("all:\n  children:\n    production:\n      children:\n"
                     "        db: {hosts: {localhost: {}}}\n        app: {hosts: {localhost: {}}}\n"
                     "  vars: {ansible_connection: local, ansible_python_interpreter: /usr/bin/python3}\n")
        run = recover({"recover_mode": "pitr", "target": {"time": history["target_time"]}, "hb_repo_root": ROOT},
                      inventory=inv)
    finally:
        shutil.rmtree(inv)
    assert run.rc != 0
    assert "is in the production group" in run.stdout and "-e confirm=localhost" in run.stdout, run.stdout[-3000:]
    assert_unchanged(sandbox, before, run)


# -- (1) PITR to each kind of target --------------------------------------------------------------

KINDS = ["time", "xid", "lsn", "name", "immediate"]


@pytest.mark.parametrize("kind", KINDS)
def test_pitr_restores_exactly_the_rows_up_to_the_target(history, sandbox, kind):
    target = {"time": history["target_time"], "xid": history["batch2"]["xid"], "lsn": history["batch2"]["lsn"],
              "name": "rdb-after-batch-2", "immediate": True}[kind]
    preserved_before = h.preserved_dirs(sandbox)
    run = pitr({kind: target})
    assert run.rc == 0, run.stdout[-5000:]
    assert "RETRYING" not in run.stdout  # the wait is one task with a status line now and then, not a line per poll
    expected = dict.fromkeys(TAGS, 0)
    expected[TAGS[0]] = BATCH
    if kind != "immediate":  # immediate = the base backup's consistent point: before batch 2
        expected[TAGS[1]] = BATCH
    assert h.batch_counts(sandbox, TAGS) == expected
    assert sandbox.http("/health")[0] == 200
    new = sorted(set(h.preserved_dirs(sandbox)) - set(preserved_before))
    assert len(new) == 1 and ".pre_pitr_" in new[0]
    preserved = os.path.join(os.path.dirname(sandbox["hb_pg_data_dir"]), new[0])
    assert os.path.exists(os.path.join(preserved, "PG_VERSION"))
    record = h.read_json(os.path.join(latest_run_dir(sandbox), "recovery.json"))
    assert record["status"] == "ok" and record["backup"]["name"] == history["base"]
    assert record["reached"]["timeline"] > 1 and record["reached"]["lsn"]
    assert record["rows_after"] == h.table_counts(sandbox)
    assert record["preserved"]["data_dir"] == preserved
    auto = sandbox.psql("SELECT count(*) FROM pg_file_settings WHERE name LIKE 'recovery_target%' "
                        "OR name = 'restore_command'")
    assert auto == "0"  # ALTER SYSTEM RESET after promotion: a restart does not recover again
    status = sandbox.psql("SELECT last_archived_wal FROM pg_stat_archiver")
    assert int(status[:8], 16) == record["reached"]["timeline"]
    # the standby could not follow the new timeline: it was re-seeded from the recovered primary, its old data kept
    assert sandbox.standby_state() == (True, "streaming", record["reached"]["timeline"]), run.stdout[-3000:]
    assert "previous data directory kept as" in run.stdout and ".pre_rejoin_" in run.stdout


def latest_run_dir(box):
    root = box["hb_run_root"]
    runs = sorted(d for d in os.listdir(root) if d.endswith("-recover-db"))
    return os.path.join(root, runs[-1])


# -- (2) dump mode -------------------------------------------------------------------------------

def test_dump_mode_brings_back_exactly_the_dumps_rows(history, sandbox):
    dump = h.make_dump(sandbox)
    dumped = h.read_json(dump + ".json")["tables"]
    sandbox.psql("DELETE FROM health_data WHERE id % 7 = 0")
    deleted_state = h.table_counts(sandbox)
    assert deleted_state["public.health_data"] < dumped["public.health_data"]
    probe = h.OutageProbe(sandbox)
    probe.start()
    try:
        run = recover({"recover_mode": "dump", "dump": os.path.basename(dump)})
    finally:
        probe.stop()
    assert run.rc == 0, run.stdout[-5000:]
    assert h.table_counts(sandbox) == dumped
    assert sandbox.http("/health")[0] == 200
    record = h.read_json(os.path.join(latest_run_dir(sandbox), "recovery.json"))
    preserved_db = record["preserved"]["database"]
    assert preserved_db.startswith(sandbox["hb_db_name"] + "_pre_restore_")
    assert h.table_counts(sandbox, db=preserved_db) == deleted_state
    assert record["rows_before"] == deleted_state and record["rows_after"] == dumped
    # time: the phases are back to back and add up to the wall time; the downtime covers what a user saw
    assert [p["mark"] for p in record["phases"]] == ["start", "maintenance_on", "app_stopped", "restored", "serving"]
    assert abs(sum(p["seconds"] for p in record["phases"]) - record["wall_s"]) < 0.01
    assert probe.down and 0 < record["downtime_s"] < record["wall_s"]
    assert probe.span() <= record["downtime_s"] + 1.0, (probe.span(), record["downtime_s"])  # not under-reported
    with open(os.path.join(latest_run_dir(sandbox), "recovery.md"), encoding="utf-8") as fh:
        assert "App downtime: **%s s**" % record["downtime_s"] in fh.read()


# -- (4) faults during recovery restore the pre-run state ------------------------------------------

def test_pg_restore_killed_midway_leaves_the_live_database(history, sandbox):
    dump = h.make_dump(sandbox)
    before = state(sandbox)
    needles = ("bin/pg_restore", sandbox["hb_db_name"] + "_restore_")
    killer = h.Watcher(lambda: h.pids_of(*needles),
                       lambda: [os.kill(pid, signal.SIGKILL) for pid in h.pids_of(*needles)])
    killer.start()
    try:
        run = recover({"recover_mode": "dump", "dump": os.path.basename(dump), "jobs": 1})
    finally:
        killer.stop()
    assert killer.fired, "pg_restore finished before it could be killed"
    assert run.rc != 0 and "pg_restore" in run.stdout and "Roll-back" in run.stdout, run.stdout[-3000:]
    assert_unchanged(sandbox, before, run)


def test_wal_segment_removed_after_preflight_rolls_back(history, sandbox):
    before = state(sandbox)
    seg = os.path.join(sandbox["hb_wal_archive_dir"], history["batch2_segment"])
    aside = seg + ".rdb-test-aside"
    watcher = h.Watcher(lambda: any(".pre_pitr_" in d for d in h.preserved_dirs(sandbox)
                                    if d not in before["preserved"]),
                        lambda: os.rename(seg, aside))
    watcher.start()
    try:
        run = pitr({"time": history["target_time"]})
    finally:
        watcher.stop()
        if os.path.exists(aside):
            os.rename(aside, seg)
    assert watcher.fired
    assert run.rc != 0
    # Said by the replay watcher, or by PostgreSQL itself when it stops first (which one depends on timing).
    assert re.search(r"recovery ended before (the|configured recovery) target", run.stdout), run.stdout[-3000:]
    assert "moved %s" % sandbox["hb_pg_data_dir"] in run.stdout
    before["preserved"] = h.preserved_dirs(sandbox)  # the failed restore is kept beside, by design
    assert any(".failed_pitr_" in d for d in before["preserved"])
    assert_unchanged(sandbox, before, run, restarted=True)


def test_postgres_failing_to_start_on_the_restored_dir_rolls_back(history, sandbox):
    before = state(sandbox)
    run = pitr({"time": history["target_time"]}, recover_db_extra_settings={"work_mem": "lots"})
    assert run.rc != 0
    assert "PITR failed at step 'start PostgreSQL and replay WAL'" in run.stdout, run.stdout[-3000:]
    assert "did not start on the restored data directory" in run.stdout and "work_mem" in run.stdout
    before["preserved"] = h.preserved_dirs(sandbox)
    assert_unchanged(sandbox, before, run, restarted=True)


def test_app_failing_its_health_check_after_the_restore_rolls_back(history, sandbox):
    """A base backup whose pg_hba.conf rejects the app: the recovery works, /health does not."""
    hba = os.path.join(sandbox["hb_pg_data_dir"], "pg_hba.conf")
    original = h.read_text(hba)
    try:
        with open(hba, "w", encoding="utf-8") as fh:
            fh.write("host all %s 127.0.0.1/32 reject\n" % sandbox["hb_db_app_user"] + original)
        sandbox.psql("SELECT pg_reload_conf()")
        bad = h.make_base_backup(sandbox)
    finally:
        with open(hba, "w", encoding="utf-8") as fh:
            fh.write(original)
        sandbox.psql("SELECT pg_reload_conf()")
    sandbox.wait_health(200)
    before = state(sandbox)
    try:
        run = pitr({"immediate": True}, backup=bad)
    finally:
        base_root = os.path.join(sandbox["hb_backup_dir"], "base")
        shutil.rmtree(os.path.join(base_root, bad), ignore_errors=True)
        os.unlink(os.path.join(base_root, bad + ".json"))
    assert run.rc != 0
    assert "Wait for /health to answer 200" in run.stdout and "App after roll-back: healthy" in run.stdout, \
        run.stdout[-3000:]
    before["preserved"] = h.preserved_dirs(sandbox)
    assert_unchanged(sandbox, before, run, restarted=True)
    record = h.read_json(os.path.join(latest_run_dir(sandbox), "recovery.json"))
    assert record["status"] == "rolled_back" and record["error"]


# -- cleanup_preserved.yml ---------------------------------------------------------------------------

def test_cleanup_preserved_lists_under_check_then_removes_only_preserved_copies(history, sandbox):
    dirs = h.preserved_dirs(sandbox)
    dbs = sandbox.psql("SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE '%\\_pre\\_restore\\_%'")
    assert dirs and dbs, "earlier tests left no preserved copies to clean up"
    before = state(sandbox)
    run = run_playbook("cleanup_preserved.yml", {"older_than_days": 0}, check=True)
    assert run.rc == 0 and run.changed == 0, run.stdout[-3000:]
    assert all(d in run.stdout for d in dirs) and "remove" in run.stdout
    assert state(sandbox) == before
    run = run_playbook("cleanup_preserved.yml", {"older_than_days": 0})
    assert run.rc == 0, run.stdout[-3000:]
    assert h.preserved_dirs(sandbox) == []
    assert sandbox.psql("SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_pre\\_restore\\_%'") == "0"
    assert h.table_counts(sandbox) == before["rows"] and sandbox.http("/health")[0] == 200
