"""recover_db.yml whose controller dies mid-run, as an SSH drop kills ansible-playbook and its workers.

The restore goes on as an async job. The same command run again must finish that run (not start a second
recovery on top of it): the right rows, the app online, /health 200, maintenance off, one preserved copy.
``-e abort=<stamp>`` must put the preserved state back instead. A second run while the first is alive is refused.
"""

from __future__ import annotations

import os
import subprocess
import time

import interrupt_helpers as ih
import pytest
import recoverdb_helpers as h
from harness import ROOT, run_playbook, wait_for

TAGS = ("intr-batch-1", "intr-batch-2", "intr-batch-3")
BATCH = 30
FAST = {"recover_db_health_retries": 20, "jobs": 1}


@pytest.fixture(scope="module")
def history(sandbox):
    """batch 1, a base backup, batch 2, the target time, batch 3, archived."""
    sandbox.ensure_healthy()
    sandbox.psql("DELETE FROM health_data WHERE metric LIKE 'intr-%'")
    h.insert_batch(sandbox, TAGS[0], BATCH)
    base = h.make_base_backup(sandbox)
    time.sleep(1.1)
    h.insert_batch(sandbox, TAGS[1], BATCH)
    time.sleep(1.1)
    target = h.iso_now()
    time.sleep(1.1)
    last = h.insert_batch(sandbox, TAGS[2], BATCH)
    tli = int(sandbox.scalar("SELECT timeline_id FROM pg_control_checkpoint()"))
    sandbox.psql("SELECT pg_switch_wal()")
    seg = h.segment_of(last["lsn"], tli)
    wait_for(lambda: os.path.exists(os.path.join(sandbox["hb_wal_archive_dir"], seg)), what="WAL archived")
    return {"base": base, "target": {"time": target}}


def lock(box):
    return ih.lock(os.path.join(box["hb_run_root"], "locks"), "recover-db")


def journal(box):
    return ih.journal(os.path.join(box["hb_run_root"], "locks"), "recover-db")


def start(extravars):
    return ih.start("recover_db.yml", extravars)


def killed_at(box, extravars, step):
    """Start a recovery and SIGKILL its controller (the whole session) once the journal has ``step``."""
    return ih.killed_at("recover_db.yml", extravars, os.path.join(box["hb_run_root"], "locks"), "recover-db", step)


def new_preserved(box, stamp):
    dirs = [d for d in h.preserved_dirs(box) if stamp in d]
    dbs = box.psql("SELECT string_agg(datname, ',') FROM pg_database WHERE datname ILIKE '%%%s%%'" % stamp.lower())
    return dirs + [d for d in dbs.split(",") if d]


def assert_finished(box, run, record, expected):
    """The re-run finished the interrupted run: rows, app, maintenance, one preserved copy, records closed."""
    stamp = record["stamp"]
    assert run.rc == 0, run.stdout[-5000:]
    assert "interrupted run %s" % stamp in run.stdout
    assert h.batch_counts(box, TAGS) == expected
    assert box.http("/health")[0] == 200
    assert not os.path.exists(box["hb_app_maintenance_flag"])
    assert box.pm2_process()["pm2_env"]["status"] == "online"
    assert len(new_preserved(box, stamp)) == 1, new_preserved(box, stamp)
    run_dir = os.path.join(box["hb_run_root"], "%s-recover-db" % stamp)
    assert os.path.exists(os.path.join(run_dir, "recovery.json")), (  # seen once in CI: say what was there
        sorted(os.listdir(box["hb_run_root"])), sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else None,
        run.stdout[-6000:])
    done = h.read_json(os.path.join(run_dir, "recovery.json"))
    assert done["status"] == "ok" and done["interrupted"] is True, done
    assert h.read_json(os.path.join(run_dir, "run.json"))["state"] == "ended"
    assert lock(box) is None


def assert_reported_interrupted(box):
    """incident_report on the killed run's timeline, given as a path relative to where it is run from."""
    root = box["hb_run_root"]
    killed = sorted(d for d in os.listdir(root) if d.endswith("-recover_db"))[-1]
    argv = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", "sandbox"),
            os.path.join(ROOT, "playbooks", "incident_report.yml"), "-e", "incident_report_run_dir=runs/" + killed,
            "-e", "incident_report_lang=en"]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(argv, cwd=os.path.dirname(root), env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "outcome interrupted" in proc.stdout, proc.stdout[-2000:]
    with open(os.path.join(root, killed, "incident-report.en.md"), encoding="utf-8") as fh:
        assert "interrupted (the run never ended" in fh.read()


RESTORED = {TAGS[0]: BATCH, TAGS[1]: BATCH, TAGS[2]: 0}


@pytest.mark.parametrize("step", ["maintenance_on", "restore_launched", "restored"])
def test_pitr_killed_then_rerun_finishes_it(history, sandbox, step):
    sandbox.ensure_healthy()
    args = dict(FAST, recover_mode="pitr", target=history["target"], backup=history["base"])
    record = killed_at(sandbox, args, step)
    # What the issue found: the app left down, or in maintenance, with nothing saying so.
    assert sandbox.http("/health")[0] != 200 or os.path.exists(sandbox["hb_app_maintenance_flag"])
    if step == "maintenance_on":
        assert_reported_interrupted(sandbox)
    if step == "restored":
        # cleanup_preserved spares the copy the interrupted run may still need, whatever its age
        kept = new_preserved(sandbox, record["stamp"])
        clean = run_playbook("cleanup_preserved.yml", {"older_than_days": 0})
        assert clean.rc == 0, clean.stdout[-3000:]
        assert "kept: interrupted recover-db run %s" % record["stamp"] in clean.stdout, clean.stdout[-3000:]
        assert kept and new_preserved(sandbox, record["stamp"]) == kept
    rerun = run_playbook("recover_db.yml", args)
    assert_finished(sandbox, rerun, record, RESTORED)


def test_dump_restore_killed_then_rerun_finishes_it(history, sandbox):
    sandbox.ensure_healthy()
    sandbox.psql("DELETE FROM health_data WHERE metric LIKE 'intr-%'")
    h.insert_batch(sandbox, TAGS[0], BATCH)
    dump = h.make_dump(sandbox)
    h.insert_batch(sandbox, TAGS[1], BATCH)  # after the dump: gone once it is restored
    args = dict(FAST, recover_mode="dump", dump=os.path.basename(dump))
    record = killed_at(sandbox, args, "restore_launched")
    rerun = run_playbook("recover_db.yml", args)
    assert "its restore job: " in rerun.stdout
    assert_finished(sandbox, rerun, record, {TAGS[0]: BATCH, TAGS[1]: 0, TAGS[2]: 0})


def test_abort_puts_the_preserved_state_back(history, sandbox):
    sandbox.ensure_healthy()
    before = h.batch_counts(sandbox, TAGS)
    fingerprint = h.data_dir_fingerprint(sandbox)
    args = dict(FAST, recover_mode="pitr", target=history["target"], backup=history["base"])
    record = killed_at(sandbox, args, "restore_launched")
    other = run_playbook("recover_db.yml", dict(args, jobs=2))
    assert other.rc != 0 and "was given other inputs: jobs: 1 (interrupted run) vs 2 (this run)" in other.stdout, \
        other.stdout[-3000:]
    run = run_playbook("recover_db.yml", {"abort": record["stamp"], "recover_db_health_retries": 20})
    assert run.rc == 0, run.stdout[-5000:]
    assert h.batch_counts(sandbox, TAGS) == before  # batch 3 is there again: nothing was restored
    after = h.data_dir_fingerprint(sandbox)
    assert (after["inode"], after["system_identifier"], after["timeline"]) == (
        fingerprint["inode"], fingerprint["system_identifier"], fingerprint["timeline"])
    assert sandbox.http("/health")[0] == 200 and not os.path.exists(sandbox["hb_app_maintenance_flag"])
    run_dir = os.path.join(sandbox["hb_run_root"], "%s-recover-db" % record["stamp"])
    assert h.read_json(os.path.join(run_dir, "recovery.json"))["status"] == "aborted"
    assert lock(sandbox) is None
    again = run_playbook("recover_db.yml", {"abort": record["stamp"]})
    assert again.rc != 0 and "no interrupted recover-db run holds this host" in again.stdout


def test_a_second_run_while_the_first_is_alive_is_refused(history, sandbox):
    sandbox.ensure_healthy()
    dump = h.make_dump(sandbox)
    args = dict(FAST, recover_mode="dump", dump=os.path.basename(dump))
    first = start(args)
    try:
        wait_for(lambda: lock(sandbox) is not None or first.poll() is not None, timeout=60, interval=0.05,
                 what="the first run's lock")
        second = run_playbook("recover_db.yml", args, check=True)
        assert first.poll() is None, "the first run ended before the second was refused"
    finally:
        out = first.communicate(timeout=300)[0]
    assert second.rc != 0 and "another recover-db is running on this host: run " in second.stdout, \
        second.stdout[-3000:]
    assert first.returncode == 0, out[-3000:]
    assert sandbox.http("/health")[0] == 200
