"""PITR targets the planner accepts are reached: a quiet moment after the last commit, the record's "reached",
a transaction that exists only on a newer timeline, a time inside a base backup.

"Just after the incident, in a quiet moment" lies after the last commit but before the newest segment's
mtime. Replay would end before it; the planner must refuse it naming the last commit, or, asked to, recover
to the end of the archived WAL. The record's ``reached`` is the last record and commit applied.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
import recoverdb_helpers as h
from harness import run_playbook, wait_for

TAGS = ("tgt-before", "tgt-last")


@pytest.fixture(scope="module")
def quiet(sandbox):
    sandbox.ensure_healthy()
    sandbox.psql("DELETE FROM health_data WHERE metric LIKE 'tgt-%'")
    h.insert_batch(sandbox, TAGS[0], 20)
    base = h.make_base_backup(sandbox)
    time.sleep(1.1)
    last = h.insert_batch(sandbox, TAGS[1], 20)
    time.sleep(1.2)
    moment = h.iso_now()  # nothing commits from here on
    time.sleep(1.2)
    tli = int(sandbox.scalar("SELECT timeline_id FROM pg_control_checkpoint()"))
    segment = h.segment_of(sandbox.scalar("SELECT pg_current_wal_lsn()"), tli)
    sandbox.psql("SELECT pg_switch_wal()")
    wait_for(lambda: os.path.exists(os.path.join(sandbox["hb_wal_archive_dir"], segment)), what="WAL archived")
    return {"base": base, "last": last, "moment": moment}


def archive_current_segment(box):
    """Switch WAL and wait until the segment just closed is archived (and with it every one before it)."""
    tli = int(box.scalar("SELECT timeline_id FROM pg_control_checkpoint()"))
    segment = h.segment_of(box.scalar("SELECT pg_current_wal_lsn()"), tli)
    box.psql("SELECT pg_switch_wal()")
    wait_for(lambda: os.path.exists(os.path.join(box["hb_wal_archive_dir"], segment)), what="WAL %s archived" % segment)
    return tli


def test_a_time_after_the_last_commit_is_refused_before_any_change_naming_it(quiet, sandbox):
    before = h.data_dir_fingerprint(sandbox)
    run = run_playbook("recover_db.yml", {"recover_mode": "pitr", "target": {"time": quiet["moment"]},
                                          "backup": quiet["base"]})
    assert run.rc != 0
    assert "is after the last commit in the archived WAL (" in run.stdout, run.stdout[-3000:]
    assert '"past_last_commit": "end_of_wal"' in run.stdout
    assert h.data_dir_fingerprint(sandbox) == before and sandbox.http("/health")[0] == 200


def test_past_last_commit_end_of_wal_recovers_every_commit_and_records_the_last_one_applied(quiet, sandbox):
    run = run_playbook("recover_db.yml", {"recover_mode": "pitr", "backup": quiet["base"],
                                          "target": {"time": quiet["moment"], "past_last_commit": "end_of_wal"},
                                          "recover_db_health_retries": 20})
    assert run.rc == 0, run.stdout[-5000:]
    assert "so the target is the end of the archived WAL" in run.stdout
    assert h.batch_counts(sandbox, TAGS) == {TAGS[0]: 20, TAGS[1]: 20}
    root = sandbox["hb_run_root"]
    newest = sorted(d for d in os.listdir(root) if d.endswith("-recover-db"))[-1]
    record = h.read_json(os.path.join(root, newest, "recovery.json"))
    reached = record["reached"]
    # the last commit applied is the last batch's (commit time read by the server, not the client's clock)
    assert abs(h.parse_iso(reached["time"]) - h.parse_iso(quiet["last"]["committed"])) < 1.0, reached
    assert h.lsn(reached["lsn"]) >= h.lsn(quiet["last"]["lsn"]), reached
    assert sandbox.http("/health")[0] == 200


def test_an_xid_only_on_a_newer_timeline_is_refused_naming_the_timeline_that_reaches_it(quiet, sandbox):
    """After the end_of_wal PITR above the server runs on a new timeline; a transaction committed there is not on
    the base backup's own timeline (the default), and the refusal names the ``timeline`` value that reaches it."""
    base_tli = int(sandbox.scalar("SELECT timeline_id FROM pg_control_checkpoint()"))
    newer = h.insert_batch(sandbox, "tgt-newer", 5)
    assert archive_current_segment(sandbox) == base_tli
    before = h.data_dir_fingerprint(sandbox)
    run = run_playbook("recover_db.yml", {"recover_mode": "pitr", "target": {"xid": newer["xid"]},
                                          "backup": quiet["base"]})
    assert run.rc != 0
    assert "commit of transaction %s is not on the target's timeline" % newer["xid"] in run.stdout, run.stdout[-3000:]
    assert 'add "timeline": %d' % base_tli in run.stdout, run.stdout[-3000:]
    assert h.data_dir_fingerprint(sandbox) == before and sandbox.http("/health")[0] == 200
    # With the timeline it names, the same target is planned (check mode: nothing changes).
    plan = run_playbook("recover_db.yml", {"recover_mode": "pitr", "backup": quiet["base"],
                                           "target": {"xid": newer["xid"], "timeline": base_tli}}, check=True)
    assert plan.rc == 0, plan.stdout[-3000:]
    assert "timeline %d" % base_tli in plan.stdout
    sandbox.psql("DELETE FROM health_data WHERE metric = 'tgt-newer'")


def backup_history(box):
    """START/STOP WAL LOCATION and STOP TIME of the newest .backup file in the archive."""
    wal = box["hb_wal_archive_dir"]
    newest = max((n for n in os.listdir(wal) if n.endswith(".backup")),
                 key=lambda n: os.path.getmtime(os.path.join(wal, n)))
    fields = dict(line.partition(": ")[::2] for line in h.read_text(os.path.join(wal, newest)).splitlines())
    return {"start_lsn": fields["START WAL LOCATION"].split()[0], "stop_lsn": fields["STOP WAL LOCATION"].split()[0],
            "start_wal": fields["START WAL LOCATION"].split("file ")[1].rstrip(")"),
            "stop_time": fields["STOP TIME"]}


def commits_between(box, first_wal, start_lsn, stop_lsn):
    out = h.as_postgres(box.site, [os.path.join(box["hb_pg_bindir"], "pg_waldump"), "--path",
                                   box["hb_wal_archive_dir"], "--rmgr", "Transaction", first_wal],
                        check=False, env=dict(os.environ, TZ="UTC")).stdout
    found = []
    for line in out.splitlines():
        if "COMMIT" not in line:
            continue
        at = line.split("lsn: ")[1].split(",")[0]
        when = line.split("COMMIT ")[1].split(" UTC")[0]
        if h.lsn(start_lsn) <= h.lsn(at) < h.lsn(stop_lsn):
            found.append((at, when.replace(" ", "T") + "Z"))
    return found


def write_until(box, stop):
    while not stop.is_set():
        box.psql("INSERT INTO health_data (user_id, metric, value) VALUES (1, 'tgt-during', 1)")


def test_a_time_inside_a_base_backup_is_refused_for_it_naming_the_first_time_that_works(quiet, sandbox):
    """Commits run during the backup. A target between its whole-second STOP TIME and a later commit before its
    end-of-backup point would stop replay before the backup is consistent: refused before any change."""
    for _attempt in range(4):
        stop = threading.Event()
        writer = threading.Thread(target=write_until, args=(sandbox, stop))
        writer.start()
        try:
            inside = h.make_base_backup(sandbox)
        finally:
            stop.set()
            writer.join()
        # the backup's .backup file and the WAL after its end are archived before the plan reads them
        archive_current_segment(sandbox)
        info = backup_history(sandbox)
        stop_second = h.parse_iso(info["stop_time"].replace(" UTC", "Z").replace(" ", "T"))
        late = [c for c in commits_between(sandbox, info["start_wal"], info["start_lsn"], info["stop_lsn"])
                if h.parse_iso(c[1]) > stop_second]
        if late:
            break
    else:
        pytest.fail("no commit landed between a backup's STOP TIME and its end in 4 tries")
    target = (stop_second + h.parse_iso(late[-1][1])) / 2
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(target)) + (".%06dZ" % int((target % 1) * 1e6))
    before = h.data_dir_fingerprint(sandbox)
    named = run_playbook("recover_db.yml", {"recover_mode": "pitr", "target": {"time": when}, "backup": inside})
    assert named.rc != 0
    assert "is inside base backup %s" % inside in named.stdout, named.stdout[-3000:]
    assert "Give a time at or after %s" % late[-1][1].rstrip("Z")[:19] in named.stdout, named.stdout[-3000:]
    assert h.data_dir_fingerprint(sandbox) == before and sandbox.http("/health")[0] == 200
    sandbox.psql("DELETE FROM health_data WHERE metric = 'tgt-during'")
