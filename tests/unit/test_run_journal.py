"""The run journal: new, busy, interrupted (resume, takeover, abort), stale locks, steps and the end."""

import datetime as dt
import json
import os

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import run_journal as journal

ME = {"host": "ops-1", "pid": 200, "start": "77"}
DEAD = {"host": "ops-1", "pid": 100, "start": "11"}
ELSEWHERE = {"host": "laptop", "pid": 100, "start": "11"}
INPUTS = {"mode": "pitr", "target": {"time": "2026-12-02T01:00:00Z"}, "jobs": 1}


def started(tmp_path, controller, facts=None):
    run_dir = str(tmp_path / "20261202T010000Z-recover-db")
    journal.begin(str(tmp_path / "locks"), "recover-db", run_dir, "20261202T010000Z", INPUTS, controller, facts=facts)
    return run_dir


def test_no_lock_is_a_new_run_and_begin_writes_intent_and_lock(tmp_path):
    locks = str(tmp_path / "locks")
    assert journal.inspect(locks, "recover-db", ME, [])["decision"] == "new"
    run_dir = started(tmp_path, ME, facts={"plan": "p"})
    record = journal.read_json(os.path.join(run_dir, "run.json"))
    assert record["state"] == "running" and record["inputs"] == INPUTS and record["facts"] == {"plan": "p"}
    assert journal.read_json(os.path.join(locks, "recover-db.lock"))["stamp"] == "20261202T010000Z"


def test_a_live_holder_on_this_controller_refuses_naming_it(tmp_path):
    started(tmp_path, DEAD)
    with pytest.raises(journal.JournalError, match=r"another recover-db is running on this host: run 20261202T010000Z"):
        journal.inspect(str(tmp_path / "locks"), "recover-db", ME, ["100:11"])


def test_a_dead_holder_is_resumed_with_its_steps_facts_and_input_differences(tmp_path):
    run_dir = started(tmp_path, DEAD)
    journal.step(run_dir, "maintenance_on")
    journal.step(run_dir, "app_seen", {"app_was_online": True})
    found = journal.inspect(str(tmp_path / "locks"), "recover-db", ME, ["200:77"], inputs=dict(INPUTS, jobs=2))
    assert found["decision"] == "resume" and found["done"] == ["maintenance_on", "app_seen"]
    assert found["record"]["facts"]["app_was_online"] is True and found["job"] == {"state": "none"}
    assert found["mismatch"] == ["jobs: 1 (interrupted run) vs 2 (this run)"]


def test_steps_reached_together_are_recorded_in_one_write_in_order(tmp_path):
    run_dir = started(tmp_path, DEAD)
    record = journal.step(run_dir, ["maintenance_on", "app_stopped"], {"marks": {"maintenance_on": 1.0}})
    assert [s["name"] for s in record["steps"]] == ["maintenance_on", "app_stopped"]
    assert record["notes"][-1].endswith("step maintenance_on, app_stopped")
    found = journal.inspect(str(tmp_path / "locks"), "recover-db", ME, ["200:77"], inputs=INPUTS)
    assert found["done"] == ["maintenance_on", "app_stopped"] and found["record"]["facts"]["marks"] == {
        "maintenance_on": 1.0}


def test_a_pid_reused_by_another_process_is_not_the_holder(tmp_path):
    started(tmp_path, DEAD)
    assert journal.inspect(str(tmp_path / "locks"), "recover-db", ME, ["100:99"])["decision"] == "resume"


def test_another_controller_needs_takeover_or_abort_with_the_right_stamp(tmp_path):
    started(tmp_path, ELSEWHERE)
    locks = str(tmp_path / "locks")
    with pytest.raises(journal.JournalError, match="-e takeover=20261202T010000Z or undo it with -e abort="):
        journal.inspect(locks, "recover-db", ME, [])
    with pytest.raises(journal.JournalError, match="is 20261202T010000Z, not 1999"):
        journal.inspect(locks, "recover-db", ME, [], takeover="1999")
    assert journal.inspect(locks, "recover-db", ME, [], takeover="20261202T010000Z")["decision"] == "resume"
    assert journal.inspect(locks, "recover-db", ME, [], abort="20261202T010000Z")["decision"] == "abort"


def test_abort_without_an_interrupted_run_is_refused(tmp_path):
    with pytest.raises(journal.JournalError, match="abort=2026: no interrupted recover-db run holds this host"):
        journal.inspect(str(tmp_path / "locks"), "recover-db", ME, [], abort="2026")


def test_end_releases_the_lock_and_an_ended_or_orphan_lock_is_stale(tmp_path):
    locks = str(tmp_path / "locks")
    run_dir = started(tmp_path, DEAD)
    journal.end(locks, "recover-db", run_dir, "ok")
    assert not os.path.exists(os.path.join(locks, "recover-db.lock"))
    with open(os.path.join(locks, "recover-db.lock"), "w") as fh:
        json.dump({"stamp": "x", "run_dir": str(tmp_path / "gone")}, fh)
    assert journal.inspect(locks, "recover-db", ME, [])["decision"] == "new"
    started(tmp_path, ME)  # replaces the orphan lock


def test_end_writes_the_reports_then_closes(tmp_path):
    locks = str(tmp_path / "locks")
    run_dir = started(tmp_path, DEAD)
    journal.end(locks, "recover-db", run_dir, "ok",
                files={"recovery.json": '{"status": "ok"}', "recovery.md": "# ok\n"})
    with open(os.path.join(run_dir, "recovery.json"), encoding="utf-8") as fh:
        assert json.load(fh) == {"status": "ok"}
    with open(os.path.join(run_dir, "recovery.md"), encoding="utf-8") as fh:
        assert fh.read() == "# ok\n"
    assert sorted(os.listdir(run_dir)) == ["recovery.json", "recovery.md", "run.json"]


@pytest.mark.parametrize("name", ["run.json", "../x", "a/b", "", "x.tmp"])
def test_end_refuses_a_report_name_that_is_not_a_plain_file_beside_the_record(tmp_path, name):
    run_dir = started(tmp_path, DEAD)
    with pytest.raises(journal.JournalError, match="plain file name"):
        journal.end(str(tmp_path / "locks"), "recover-db", run_dir, "ok", files={name: "x"})
    assert journal.read_json(os.path.join(run_dir, "run.json"))["state"] == "running"


def test_resume_takes_over_the_lock_and_keeps_every_controller(tmp_path):
    locks = str(tmp_path / "locks")
    run_dir = started(tmp_path, DEAD)
    record = journal.begin(locks, "recover-db", run_dir, "20261202T010000Z", INPUTS, ME, resume_of="20261202T010000Z")
    assert record["controller"] == ME and record["controllers"] == [DEAD, ME]
    with pytest.raises(journal.JournalError, match="changed meanwhile"):
        journal.begin(locks, "recover-db", run_dir, "x", INPUTS, ME, resume_of="other")


def test_the_job_is_finished_failed_running_or_lost(tmp_path, monkeypatch):
    results = tmp_path / "j1.5"
    job = {"jid": "j1.5", "results_file": str(results)}
    results.write_text(json.dumps({"finished": 1, "rc": 0}))
    assert journal.job_state(job)["state"] == "finished"
    results.write_text(json.dumps({"changed": True, "reached": {"lsn": "0/5000000"}}))  # the module's own result
    assert journal.job_state(job)["state"] == "finished"
    results.write_text(json.dumps({"finished": 1, "failed": True, "msg": "pg_restore: error"}))
    assert journal.job_state(job) == {"state": "failed", "msg": "pg_restore: error"}
    results.write_text(json.dumps({"started": 1, "finished": 0}))
    wrapper = (42, ["/usr/bin/python3", "/tmp/x/async_wrapper.py", "j1"])
    monkeypatch.setattr(journal, "processes", lambda: iter([wrapper]))
    assert journal.job_state(job)["state"] == "running"
    other = (42, ["/usr/bin/python3", "/tmp/x/other.py", "j1"])
    monkeypatch.setattr(journal, "processes", lambda: iter([other]))
    assert journal.job_state(job)["state"] == "lost"


def test_copies_of_an_interrupted_run_are_kept_by_cleanup_whatever_their_age(tmp_path):
    from ansible_collections.healthbutler.recovery.plugins.module_utils import preserved

    locks, run_dir, done_dir = tmp_path / "locks", tmp_path / "20261101T000000Z-recover-db", tmp_path / "done"
    for d in (locks, run_dir, done_dir):
        d.mkdir()
    journal.write_json(str(locks / "recover-db.lock"), {"stamp": "20261101T000000Z", "kind": "recover-db",
                                                        "run_dir": str(run_dir)})
    journal.write_json(str(run_dir / journal.RECORD), {"state": "open", "steps": []})
    journal.write_json(str(locks / "rollback.lock"), {"stamp": "20261102T000000Z", "kind": "rollback",
                                                      "run_dir": str(done_dir)})
    journal.write_json(str(done_dir / journal.RECORD), {"state": "ended", "steps": []})
    held = journal.open_runs(str(locks))
    assert held == {"20261101T000000Z": "recover-db"}
    items = [{"kind": "data_dir", "name": "/d.pre_pitr_20261101T000000Z", "stamp": "20261101T000000Z"},
             {"kind": "data_dir", "name": "/d.pre_pitr_20261102T000000Z", "stamp": "20261102T000000Z"}]
    aged = preserved.older_than(items, dt.datetime(2026, 11, 28, tzinfo=dt.timezone.utc), 7, held=held)
    assert [a["remove"] for a in aged] == [False, True]
    assert "interrupted recover-db run 20261101T000000Z" in aged[0]["held_by"]
    assert journal.open_runs(str(tmp_path / "none")) == {}
