"""backup_policy_violations and retention planning, at every boundary."""

import os
from datetime import timedelta

import pytest
from ansible.errors import AnsibleFilterError
from backup_fixtures import T0, iso, make_base, make_dump, make_incremental, make_wal

from ansible_collections.healthbutler.recovery.plugins.filter.backup_policy_violations import (
    backup_policy_violations,
)
from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_catalog as bc
from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_policy as bp

H = timedelta(hours=1)


def catalog_of(times_by_kind):
    """A minimal catalogue: {'dump': [datetimes], ...}."""
    backups = [{"kind": kind, "name": "%s-%s" % (kind, iso(t)), "path": "/x/%s-%s" % (kind, iso(t)),
                "time": iso(t)} for kind, times in times_by_kind.items() for t in times]
    return {"backups": backups, "wal": {"segments": []}}


def kinds(found):
    return sorted(v["kind"] for v in found)


def fresh(now, **extra):
    base = {"dump": [now - 40 * 24 * H, now - 2 * H], "base": [now - 40 * 24 * H, now - 2 * H],
            "incremental": [now - 3 * H]}
    base.update(extra)
    return catalog_of(base)


@pytest.mark.parametrize("age_hours,violated", [(24, False), (25, False), (25.01, True), (30, True)])
def test_full_age_boundary(age_hours, violated):
    now = T0
    cat = fresh(now, dump=[now - 40 * 24 * H, now - age_hours * H])
    found = bp.violations(cat, {"offsite_required": False}, iso(now))
    assert ("full_stale" in kinds(found)) is violated


def test_no_full_at_all():
    found = bp.violations(catalog_of({"incremental": [T0]}), {"offsite_required": False}, iso(T0))
    assert kinds(found).count("full_missing") == 2


@pytest.mark.parametrize("gap_hours,violated", [(4, False), (5, False), (5.01, True), (8, True)])
def test_incremental_gap_boundary(gap_hours, violated):
    now = T0
    cat = fresh(now, incremental=[now - (gap_hours + 1) * H, now - 1 * H])
    found = bp.violations(cat, {"offsite_required": False}, iso(now))
    assert ("incremental_gap" in kinds(found)) is violated


@pytest.mark.parametrize("since_hours,violated", [(5, False), (5.01, True)])
def test_incremental_since_newest_boundary(since_hours, violated):
    cat = fresh(T0, incremental=[T0 - since_hours * H])
    assert ("incremental_gap" in kinds(bp.violations(cat, {"offsite_required": False}, iso(T0)))) is violated


def test_incremental_missing_only_when_backups_are_older_than_the_interval():
    assert "incremental_missing" not in kinds(bp.violations(
        catalog_of({"dump": [T0 - H], "base": [T0 - H]}), {"offsite_required": False}, iso(T0)))
    assert "incremental_missing" in kinds(bp.violations(
        catalog_of({"dump": [T0 - 6 * H], "base": [T0 - 6 * H]}), {"offsite_required": False}, iso(T0)))


def test_gaps_older_than_the_window_are_ignored():
    cat = fresh(T0, incremental=[T0 - 35 * 24 * H, T0 - 3 * H])
    found = bp.violations(cat, {"offsite_required": False}, iso(T0))
    gaps = [v for v in found if v["kind"] == "incremental_gap"]
    assert len(gaps) == 1 and gaps[0]["gap_end"] == iso(T0 - 3 * H)


def test_retention_short_is_a_warning_while_the_site_is_young():
    cat = catalog_of({"dump": [T0 - 2 * H], "base": [T0 - 2 * H], "incremental": [T0 - H]})
    found = [v for v in bp.violations(cat, {"offsite_required": False}, iso(T0)) if v["kind"] == "retention_short"]
    assert found and found[0]["severity"] == "warning"
    ok = fresh(T0)
    assert "retention_short" not in kinds(bp.violations(ok, {"offsite_required": False}, iso(T0)))


def test_retention_excess_names_what_should_be_gone():
    cat = fresh(T0, dump=[T0 - 45 * 24 * H, T0 - 40 * 24 * H, T0 - 2 * H])
    found = [v for v in bp.violations(cat, {"offsite_required": False}, iso(T0)) if v["kind"] == "retention_excess"]
    assert found[0]["items"] == ["dump-%s" % iso(T0 - 45 * 24 * H)]


def test_offsite_missing_and_stale():
    cat = fresh(T0)
    assert "offsite_missing" in kinds(bp.violations(cat, {}, iso(T0)))
    same = bp.violations(cat, {}, iso(T0), offsite_catalog=cat)
    assert not [v for v in same if v["kind"].startswith("offsite")]
    partial = catalog_of({"dump": [T0 - 2 * H]})
    found = bp.violations(cat, {}, iso(T0), offsite_catalog=partial)
    assert "offsite_missing" in kinds(found)
    old = catalog_of({"dump": [T0 - 40 * 24 * H, T0 - 6 * H], "base": [T0 - 6 * H],
                      "incremental": [T0 - 5.5 * H]})
    assert "offsite_stale" in kinds(bp.violations(fresh(T0), {}, iso(T0), offsite_catalog=old))


@pytest.mark.parametrize("bad", [{"retention_days": -1}, {"grace_hours": "2"}, {"full_interval_hours": True}])
def test_policy_validation(bad):
    with pytest.raises(ValueError):
        bp.policy_with_defaults(bad)
    with pytest.raises(AnsibleFilterError):
        backup_policy_violations(fresh(T0), bad, iso(T0))


def test_filter_rejects_non_catalogue():
    with pytest.raises(AnsibleFilterError):
        backup_policy_violations([], {}, iso(T0))


def test_plan_retention_on_a_40_day_tree(tmp_path):
    root, wal = str(tmp_path / "b"), str(tmp_path / "w")
    now = T0
    segno = 1
    for day in range(40, -1, -1):
        ts = now - timedelta(days=day)
        make_dump(root, ts)
        make_base(root, ts, segno + 1)
        make_wal(wal, 1, [segno, segno + 1], ts - timedelta(minutes=30), step=timedelta(minutes=20))
        segno += 2
    make_incremental(root, now - timedelta(days=35), wal, ["000000010000000000000001"])
    make_incremental(root, now - timedelta(hours=1), wal, [os.listdir(wal)[0]])
    plan = bp.plan_retention(bc.scan(root, wal, verify_checksums=False), {"retention_days": 30}, iso(now))
    kept_dumps = sorted(k["name"] for k in plan["keep"] if k["kind"] == "dump")
    assert len(kept_dumps) == 32  # 31 days inside (day 30 .. 0) + the newest older one (day 31)
    assert kept_dumps[0] == "health_butler_%s.dump" % (now - timedelta(days=31)).strftime("%Y%m%dT%H%M%SZ")
    assert plan["oldest_kept_base"] == (now - timedelta(days=31)).strftime("%Y%m%dT%H%M%SZ")
    # WAL from the oldest kept base backup's start segment on is kept
    first_needed = plan["first_needed_segment"]
    kept_wal = sorted(k["name"] for k in plan["keep"] if k["kind"] == "wal")
    assert kept_wal[0] == first_needed
    removed_wal = [r["name"] for r in plan["remove"] if r["kind"] == "wal"]
    assert removed_wal and max(removed_wal) < first_needed
    assert [r["kind"] for r in plan["remove"] if r["kind"] == "incremental"] == ["incremental"]
    assert len([r for r in plan["remove"] if r["kind"] == "dump"]) == 9
