"""Accepted PITR targets are reached: inside a backup, after the last commit, on another timeline."""

import pytest
from test_pitr_plan import NOW, catalog, seg, target

from ansible_collections.healthbutler.recovery.plugins.module_utils import pitr_plan as pp
from ansible_collections.healthbutler.recovery.plugins.module_utils import pitr_wal


def commit(xid, lsn, when):
    return ("rmgr: Transaction len: 34, tx: %d, lsn: %s, prev 0/0, desc: COMMIT %s UTC\n" % (xid, lsn, when))


def test_a_time_inside_the_newest_backup_falls_back_to_the_older_one(fake_runner):
    # backup 2 stops at LSN 0/6000100, STOP TIME 12:00:05 (whole s); a commit at 12:00:05.700 lies before that end
    fake_runner.add(r"--rmgr Transaction %s %s" % (seg(6), seg(6)), stdout=commit(900, "0/60000A0",
                                                                                  "2026-11-28 12:00:05.700000"))
    fake_runner.add(r"--rmgr Transaction %s %s" % (seg(2), seg(3)), stdout="")
    fake_runner.add(r"--rmgr (Transaction|XLOG) %s %s" % (seg(8), seg(8)), stdout=commit(950, "0/8000100",
                                                                                         "2026-11-28 17:00:00"))
    plan = pitr_wal.plan_with_wal(fake_runner, "pg_waldump", "/wal", catalog(), target(time="2026-11-28T12:00:05.3Z"),
                                  NOW)
    assert plan["base_backup"]["name"] == "20261128T030000Z"
    with pytest.raises(pp.PlanError) as err:
        pitr_wal.plan_with_wal(fake_runner, "pg_waldump", "/wal", catalog(), target(time="2026-11-28T12:00:05.3Z"),
                               NOW, backup_name="20261128T120000Z")
    assert "is inside base backup 20261128T120000Z" in err.value.msg
    assert "Give a time at or after 2026-11-28T12:00:05.700000Z, or an older base backup" in err.value.msg


def test_a_time_after_the_last_commit_is_refused_naming_it_or_recovers_to_the_end_of_wal(fake_runner):
    fake_runner.add(r"--rmgr Transaction %s %s" % (seg(6), seg(6)), stdout="")
    fake_runner.add(r"--rmgr XLOG %s %s" % (seg(8), seg(8)), stdout="")
    fake_runner.add(r"--rmgr Transaction %s %s" % (seg(8), seg(8)), stdout="")
    fake_runner.add(r"--rmgr XLOG %s %s" % (seg(7), seg(7)), stdout="")
    fake_runner.add(r"--rmgr Transaction %s %s" % (seg(7), seg(7)), stdout=commit(950, "0/7000200",
                                                                                  "2026-11-28 15:00:00"))
    fake_runner.add(r"pg_waldump --path /wal %s %s" % (seg(8), seg(8)),
                    stdout="rmgr: XLOG len: 24, tx: 0, lsn: 0/08000028, prev 0/0, desc: SWITCH\n"
                           "rmgr: Standby len: 50, tx: 0, lsn: 0/08000F00, prev 0/0, desc: RUNNING_XACTS\n")
    with pytest.raises(pp.PlanError) as err:
        pitr_wal.plan_with_wal(fake_runner, "pg_waldump", "/wal", catalog(), target(time="2026-11-28T16:00:00Z"), NOW)
    assert "after the last commit in the archived WAL (2026-11-28T15:00:00Z, LSN 0/7000200" in err.value.msg
    assert '"past_last_commit": "end_of_wal"' in err.value.msg and "(LSN 0/08000F00)" in err.value.msg
    plan = pitr_wal.plan_with_wal(fake_runner, "pg_waldump", "/wal", catalog(),
                                  target(time="2026-11-28T16:00:00Z", past_last_commit="end_of_wal"), NOW)
    assert plan["target"]["kind"] == "lsn" and plan["target"]["value"] == "0/8000F00"
    assert plan["target"]["instead_of"]["time"] == "2026-11-28T16:00:00Z"
    assert pp.recovery_settings(dict(plan["target"]), "cp", 1)[1] == ("recovery_target_lsn", "0/8000F00")


def test_past_last_commit_takes_only_the_known_values():
    with pytest.raises(pp.PlanError, match="past_last_commit 'later' is not one of refuse, end_of_wal"):
        target(time="2026-11-28T16:00:00Z", past_last_commit="later")


def branched():
    """Timeline 2 branched from 1 at 0/5000100; segments 5..7 on timeline 2 as well."""
    history = {"2": [{"parent_tli": 1, "switch_lsn": "0/5000100"}]}
    extra = [{"name": seg(n, 2), "mtime": "2026-11-28T20:%02d:00Z" % n, "size": 1} for n in (5, 6, 7)]
    cat = catalog(segments=range(2, 9), history=history, extra_segments=extra)
    cat["wal"]["timelines"] = [1, 2]
    cat["backups"] = cat["backups"][:2]
    return cat


def test_an_xid_is_located_along_the_target_timelines_history(fake_runner):
    # xid 800 exists twice: on timeline 1 after the switch point (the abandoned future) and on timeline 2
    fake_runner.add(r"%s %s" % (seg(6, 2), seg(7, 2)), stdout=commit(800, "0/6000300", "2026-11-28 20:06:30"))
    fake_runner.add(r"%s %s" % (seg(5, 2), seg(7, 2)), stdout=commit(800, "0/6000300", "2026-11-28 20:06:30"))
    fake_runner.add(r"%s %s" % (seg(2), seg(4)), stdout="")
    fake_runner.add(r"%s %s" % (seg(6), seg(8)), stdout=commit(800, "0/7000000", "2026-11-28 14:00:00"))
    fake_runner.add(r"%s %s" % (seg(2), seg(8)), stdout=commit(800, "0/7000000", "2026-11-28 14:00:00"))
    found = pp.locate_target(fake_runner, "pg_waldump", "/wal", branched(), target(xid=800, timeline=2))
    assert found == {"lsn": "0/6000300", "time": "2026-11-28T20:06:30Z", "timeline": 2}
    found = pp.locate_target(fake_runner, "pg_waldump", "/wal", branched(), target(xid=800))
    assert found["timeline"] == 1 and found["lsn"] == "0/7000000"


def test_a_target_only_on_another_branch_names_the_timeline_that_reaches_it(fake_runner):
    fake_runner.add(r"%s %s" % (seg(6, 2), seg(7, 2)), stdout=commit(801, "0/6000300", "2026-11-28 20:06:30"))
    fake_runner.add(r"%s %s" % (seg(5, 2), seg(7, 2)), stdout=commit(801, "0/6000300", "2026-11-28 20:06:30"))
    fake_runner.add(r"pg_waldump", stdout="")
    with pytest.raises(pp.PlanError) as err:
        pp.locate_target(fake_runner, "pg_waldump", "/wal", branched(), target(xid=801))
    assert "is not on the target's timeline (current) but on another branch: timeline 2" in err.value.msg
    assert 'add "timeline": 2 (or "latest") to the target' in err.value.msg
