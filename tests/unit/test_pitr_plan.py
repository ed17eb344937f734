"""PITR planning: target parsing, base-backup choice by stop point, window and WAL continuity."""

import datetime as dt

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import pitr_plan as pp

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 28, 23, 0, tzinfo=UTC)


def seg(n, tli=1):
    return pp.segment_name(tli, n)


def catalog(segments=range(2, 9), gaps=(), history=None, extra_segments=()):
    """Two base backups (stops at 03:00:05 in segment 3 and 12:00:05 in segment 6), WAL 2..8."""
    segs = [{"name": seg(n), "mtime": "2026-11-28T%02d:00:00Z" % (n * 2 + 2), "size": pp.WAL_SEG_SIZE}
            for n in segments if n not in gaps]
    segs += list(extra_segments)
    return {
        "backups": [
            {"kind": "dump", "name": "x.dump", "path": "/b/dumps/x.dump", "time": "2026-11-28T03:00:00Z"},
            {"kind": "base", "name": "20261128T030000Z", "path": "/b/base/20261128T030000Z",
             "time": "2026-11-28T03:00:05Z", "stop_time": "2026-11-28T03:00:05Z",
             "start_lsn": "0/2000028", "stop_lsn": "0/3000100", "timeline": 1,
             "start_wal": seg(2), "stop_wal": seg(3), "size": 1000},
            {"kind": "base", "name": "20261128T120000Z", "path": "/b/base/20261128T120000Z",
             "time": "2026-11-28T12:00:05Z", "stop_time": "2026-11-28T12:00:05Z",
             "start_lsn": "0/6000028", "stop_lsn": "0/6000100", "timeline": 1,
             "start_wal": seg(6), "stop_wal": seg(6), "size": 2000},
        ],
        "wal": {"segments": segs, "history": history or {}, "timelines": [1]},
    }


def target(**kw):
    return pp.parse_target(kw, NOW)


@pytest.mark.parametrize("text,expected", [
    ("2026-11-28T10:30:00Z", "2026-11-28T10:30:00Z"),
    ("2026-11-28 10:30:00 UTC", "2026-11-28T10:30:00Z"),
    ("2026-11-28T18:30:00+08:00", "2026-11-28T10:30:00Z"),
    ("2026-11-28T18:30+0800", "2026-11-28T10:30:00Z"),
    ("2026-11-28T10:30:00.250000-02", "2026-11-28T12:30:00.250000Z"),
])
def test_times_with_zone_are_normalised_to_utc(text, expected):
    assert target(time=text)["value"] == expected


def test_time_without_zone_is_refused_with_an_example():
    with pytest.raises(pp.PlanError) as err:
        target(time="2025-01-02 10:30:00")
    assert "no time zone" in err.value.msg and "2025-01-02T10:30:00+00:00" in err.value.msg


@pytest.mark.parametrize("kw,needle", [
    ({"time": "yesterday"}, "not a time like"),
    ({"time": "2026-11-29T10:00:00Z"}, "in the future"),
    ({"xid": "12a"}, "not a transaction id"),
    ({"xid": 2}, "not a transaction id"),
    ({"xid": 2 ** 32}, "not a transaction id"),
    ({"lsn": "0/XYZ"}, "not an LSN"),
    ({"lsn": "3000028"}, "not an LSN"),
    ({"name": "n" * 64}, "longer than"),
    ({"time": "2026-11-28T10:00:00Z", "xid": 700}, "exactly one kind"),
    ({}, "exactly one of"),
    ({"inclusive": True}, "got none"),
    ({"xid": 700, "bogus": 1}, "unknown keys bogus"),
    ({"xid": 700, "action": "explode"}, "not one of promote"),
    ({"xid": 700, "timeline": "newest"}, "current, latest or a timeline number"),
    ({"xid": 700, "inclusive": "maybe"}, "not a boolean"),
])
def test_malformed_targets_are_refused_naming_what_is_valid(kw, needle):
    with pytest.raises(pp.PlanError) as err:
        pp.parse_target(kw, NOW)
    assert needle in err.value.msg


def test_defaults_of_a_target():
    t = target(lsn="0/5000000")
    assert (t["inclusive"], t["timeline"], t["action"], t["value"]) == (True, "current", "promote", "0/5000000")
    assert target(immediate=True)["value"] is True
    assert target(xid="745", timeline=2)["timeline"] == 2


def test_base_backup_is_chosen_by_stop_time_not_start():
    cat = catalog()
    # 12:00:03 is after the second backup's START but before its STOP: the first one must be used.
    plan = pp.build_plan(cat, target(time="2026-11-28T12:00:03Z"), NOW)
    assert plan["base_backup"]["name"] == "20261128T030000Z"
    plan = pp.build_plan(cat, target(time="2026-11-28T12:00:06Z"), NOW)
    assert plan["base_backup"]["name"] == "20261128T120000Z"


def test_base_backup_is_chosen_by_stop_lsn():
    cat = catalog()
    assert pp.build_plan(cat, target(lsn="0/6000050"), NOW)["base_backup"]["name"] == "20261128T030000Z"
    assert pp.build_plan(cat, target(lsn="0/6000100"), NOW)["base_backup"]["name"] == "20261128T120000Z"


def test_target_before_oldest_stop_is_refused_with_the_window():
    with pytest.raises(pp.PlanError) as err:
        pp.build_plan(catalog(), target(time="2026-11-28T03:00:04Z"), NOW)
    assert "earliest 2026-11-28T03:00:05Z" in err.value.msg
    assert "latest 2026-11-28T18:00:00Z" in err.value.msg
    assert err.value.window["earliest"]["backup"] == "20261128T030000Z"


def test_target_after_newest_wal_is_refused_with_the_window():
    with pytest.raises(pp.PlanError) as err:
        pp.build_plan(catalog(), target(time="2026-11-28T18:00:01Z"), NOW)
    assert "after the newest continuously archived WAL" in err.value.msg
    assert "latest 2026-11-28T18:00:00Z" in err.value.msg


def test_a_target_in_the_newest_segments_whole_second_is_accepted():
    """The catalogue's mtime is truncated to the second; the archive copy ended later in that second."""
    plan = pp.build_plan(catalog(), target(time="2026-11-28T18:00:00.400000Z"), NOW)
    assert plan["base_backup"]["name"] == "20261128T120000Z"


def test_lsn_past_the_end_of_wal_is_refused():
    with pytest.raises(pp.PlanError) as err:
        pp.build_plan(catalog(), target(lsn="0/9000000"), NOW)
    assert "past the end of continuous WAL (0/9000000)" in err.value.msg


def test_a_gap_between_backup_and_target_is_refused_naming_the_segment():
    cat = catalog(gaps=(4,))
    # from the first backup, WAL stops at segment 3: 10:00 is out of reach ...
    with pytest.raises(pp.PlanError) as err:
        pp.build_plan(cat, target(time="2026-11-28T10:00:00Z"), NOW)
    assert "segment %s is missing" % seg(4) in err.value.msg
    # ... while the second backup is past the gap and still works.
    assert pp.build_plan(cat, target(time="2026-11-28T17:00:00Z"), NOW)["base_backup"]["name"] == "20261128T120000Z"


def test_window_overall_and_per_backup():
    win = pp.window(catalog(gaps=(4,)))
    assert win["earliest"]["time"] == "2026-11-28T03:00:05Z"
    assert win["latest"]["segment"] == seg(8)
    assert win["base_backups"][0]["reaches"]["gap_at"] == seg(4)
    assert "WAL gap" in pp.describe_window(win)


def test_immediate_uses_the_newest_or_the_named_backup():
    cat = catalog()
    assert pp.build_plan(cat, target(immediate=True), NOW)["base_backup"]["name"] == "20261128T120000Z"
    plan = pp.build_plan(cat, target(immediate=True), NOW, backup_name="20261128T030000Z")
    assert plan["base_backup"]["name"] == "20261128T030000Z"
    with pytest.raises(pp.PlanError) as err:
        pp.build_plan(cat, target(immediate=True), NOW, backup_name="nope")
    assert "base backups: 20261128T030000Z, 20261128T120000Z" in err.value.msg


def test_named_backup_that_stopped_after_the_target_is_refused():
    with pytest.raises(pp.PlanError):
        pp.build_plan(catalog(), target(time="2026-11-28T11:00:00Z"), NOW, backup_name="20261128T120000Z")


def test_no_base_backup_at_all():
    cat = catalog()
    cat["backups"] = cat["backups"][:1]
    with pytest.raises(pp.PlanError) as err:
        pp.build_plan(cat, target(time="2026-11-28T11:00:00Z"), NOW)
    assert "no base backup" in err.value.msg


def test_timeline_history_is_followed_for_latest():
    # timeline 2 branched at 0/5000100: segment 5 exists on both, 6.. only on timeline 2
    history = {"2": [{"parent_tli": 1, "switch_lsn": "0/5000100"}]}
    extra = [{"name": seg(n, 2), "mtime": "2026-11-28T20:%02d:00Z" % n, "size": 1} for n in (5, 6, 7)]
    cat = catalog(segments=range(2, 6), history=history, extra_segments=extra)
    cat["wal"]["timelines"] = [1, 2]
    cat["backups"] = cat["backups"][:2]
    reach = pp.contiguous_reach(cat["wal"], seg(2), 2)
    assert reach["last"] == seg(7, 2) and reach["missing"] is None
    plan = pp.build_plan(cat, target(time="2026-11-28T20:06:00Z", timeline="latest"), NOW)
    assert plan["recovery_timeline"] == 2
    with pytest.raises(pp.PlanError) as err:
        pp.build_plan(cat, target(time="2026-11-28T20:06:00Z"), NOW)  # current = 1 ends at segment 5
    assert 'Timeline 2 (a later branch) reaches it: add "timeline": 2 (or "latest") to the target.' in err.value.msg
    with pytest.raises(pp.PlanError) as err:
        pp.build_plan(cat, target(time="2026-11-28T20:06:00Z", timeline=3), NOW)
    assert "no history file" in err.value.msg


WALDUMP = """\
rmgr: Transaction len: 34, tx: 745, lsn: 0/030000A0, prev 0/03000068, desc: COMMIT 2026-11-28 10:00:01.123456 UTC
rmgr: XLOG len (rec/tot): 98/98, tx: 0, lsn: 0/04000028, prev 0/030000A0, desc: RESTORE_POINT before-batch3
rmgr: Transaction len: 34, tx: 746, lsn: 0/05000060, prev 0/04000028, desc: COMMIT 2026-11-28 11:00:00.5 UTC
pg_waldump: error: error in WAL record at 0/5000088: invalid record length at 0/50000C0: wanted 24, got 0
"""


def test_xid_and_restore_point_are_located_in_wal(fake_runner):
    fake_runner.add(r"pg_waldump", rc=1, stdout=WALDUMP)
    found = pp.resolve_in_wal(fake_runner, "pg_waldump", "/wal", seg(2), seg(8), target(xid=745))
    assert found == {"lsn": "0/030000A0", "time": "2026-11-28T10:00:01.123456Z"}
    assert fake_runner.calls[0]["env"]["TZ"] == "UTC"
    found = pp.resolve_in_wal(fake_runner, "pg_waldump", "/wal", seg(2), seg(8), target(name="before-batch3"))
    assert found["lsn"] == "0/04000028"
    with pytest.raises(pp.PlanError) as err:
        pp.resolve_in_wal(fake_runner, "pg_waldump", "/wal", seg(2), seg(8), target(name="nope"))
    assert "Restore points there: before-batch3" in err.value.msg
    with pytest.raises(pp.PlanError):
        pp.resolve_in_wal(fake_runner, "pg_waldump", "/wal", seg(2), seg(8), target(xid=999))


def test_located_xid_chooses_the_base_by_its_lsn():
    t = target(xid=745)
    plan = pp.build_plan(catalog(), t, NOW, resolved={"lsn": "0/6000200", "time": "2026-11-28T12:10:00Z"})
    assert plan["base_backup"]["name"] == "20261128T120000Z"
    assert plan["expected_loss"]["from"] == "2026-11-28T12:10:00Z"


@pytest.mark.parametrize("kw,key,value", [
    ({"time": "2026-11-28T18:30:00+08:00"}, "recovery_target_time", "2026-11-28 10:30:00.000000+00"),
    ({"xid": 745}, "recovery_target_xid", "745"),
    ({"lsn": "0/3000028"}, "recovery_target_lsn", "0/3000028"),
    ({"name": "it's"}, "recovery_target_name", "it's"),
    ({"immediate": True}, "recovery_target", "immediate"),
])
def test_recovery_settings_per_kind(kw, key, value):
    settings = dict(pp.recovery_settings(target(**kw), pp.restore_command("/wal"), 1))
    assert settings[key] == value
    assert settings["recovery_target_timeline"] == "1"
    assert settings["recovery_target_action"] == "promote"
    assert settings["restore_command"] == 'cp "/wal/%f" "%p"'


def test_settings_rendered_by_major_version():
    settings = pp.recovery_settings(target(name="it's", inclusive=False), "cp a b", 3)
    name, text = pp.render_settings(settings, 15)
    assert name == "postgresql.auto.conf"
    assert "recovery_target_name = 'it''s'" in text and "recovery_target_inclusive = 'off'" in text
    name, text = pp.render_settings(settings, 11)
    assert name == "recovery.conf" and "standby_mode = 'off'" in text


def test_disk_check_counts_restore_and_preserved_copy():
    assert pp.disk_check(10 ** 9, 4 * 10 ** 8, 0) == (True, 4 * 10 ** 8 + 64 * 1024 * 1024)
    assert pp.disk_check(10 ** 9, 4 * 10 ** 8, 6 * 10 ** 8)[0] is False


def test_located_target_is_searched_from_each_backup_newest_first(fake_runner):
    fake_runner.add(r"pg_waldump .*%s %s" % (seg(6), seg(8)), stdout="")
    fake_runner.add(r"pg_waldump .*%s %s" % (seg(2), seg(8)), stdout=WALDUMP)
    found = pp.locate_target(fake_runner, "pg_waldump", "/wal", catalog(), target(xid=745))
    assert found["lsn"] == "0/030000A0"
    assert [c["argv"][-2:] for c in fake_runner.calls] == [[seg(6), seg(8)], [seg(2), seg(8)]]
    with pytest.raises(pp.PlanError) as err:
        pp.locate_target(fake_runner, "pg_waldump", "/wal", catalog(), target(xid=999))
    assert "has no commit of transaction 999" in err.value.msg
