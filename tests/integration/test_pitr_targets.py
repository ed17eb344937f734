"""PITR targets the planner accepts are reached: a quiet moment after the last commit, the record's "reached".

"Just after the incident, in a quiet moment" lies after the last commit but before the newest segment's
mtime. Replay would end before it; the planner must refuse it naming the last commit, or, asked to, recover
to the end of the archived WAL. The record's ``reached`` is the last record and commit applied.
"""

from __future__ import annotations

import os
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

