"""recovery_window: from a catalogue to earliest/latest recoverable points, at every boundary."""

import os
import shutil
from datetime import timedelta

import pytest
from ansible.errors import AnsibleFilterError
from backup_fixtures import T0, make_base, make_history, make_incremental, make_wal

from ansible_collections.healthbutler.recovery.plugins.filter.recovery_window import recovery_window
from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_catalog as bc


@pytest.fixture
def site(tmp_path):
    root, wal = str(tmp_path / "b"), str(tmp_path / "w")
    make_base(root, T0, 2, 3)
    make_base(root, T0 + timedelta(days=1), 6, 6)
    make_wal(wal, 1, range(1, 10), T0 - timedelta(minutes=10))   # segments 1..9, 03:00 + 10 min steps
    return root, wal


def window(root, wal, **kw):
    return recovery_window(bc.scan(root, wal), **kw)


def test_contiguous_archive(site):
    win = window(*site)
    assert win["recoverable"] is True
    assert win["earliest"] == {"time": "2026-11-28T03:00:00Z", "lsn": "0/3000100", "backup": "20261128T030000Z"}
    assert win["latest"]["segment"] == "000000010000000000000009"
    assert win["latest"]["time"] == "2026-11-28T04:10:00Z"
    assert win["latest"]["lsn"] == "0/A000000"
    assert win["gaps"] == []


def test_gap_after_oldest_base_cuts_it_short_but_newer_base_reaches_the_end(site):
    root, wal = site
    os.remove(os.path.join(wal, "000000010000000000000005"))
    win = window(root, wal)
    old, new = win["base_backups"]
    assert old["usable"] and old["reaches"]["segment"] == "000000010000000000000004"
    assert old["first_missing"] == "000000010000000000000005"
    assert new["usable"] and new["reaches"]["segment"] == "000000010000000000000009"
    assert win["earliest"]["backup"] == "20261128T030000Z"
    assert win["latest"]["backup"] == "20261129T030000Z"
    assert win["gaps"][0]["missing_first"] == "000000010000000000000005"


def test_missing_stop_segment_makes_a_base_unusable(site):
    root, wal = site
    os.remove(os.path.join(wal, "000000010000000000000003"))
    win = window(root, wal)
    assert [b["usable"] for b in win["base_backups"]] == [False, True]
    assert win["earliest"]["backup"] == "20261129T030000Z"


def test_stop_segment_is_the_last_archived_boundary(tmp_path):
    root, wal = str(tmp_path / "b"), str(tmp_path / "w")
    make_base(root, T0, 2, 3)
    make_wal(wal, 1, [2, 3], T0)
    assert window(root, wal)["latest"]["segment"] == "000000010000000000000003"
    os.remove(os.path.join(wal, "000000010000000000000003"))
    win = window(root, wal)
    assert win["recoverable"] is False and "000000010000000000000003" in win["reason"]


def test_no_base_or_no_wal(tmp_path, site):
    root, wal = site
    shutil.rmtree(os.path.join(root, "base"))
    assert window(root, wal)["reason"].startswith("no base backup")
    make_base(root, T0, 2, 3)
    assert window(root, str(tmp_path / "empty"))["reason"] == "no archived WAL segment"


def test_base_without_manifest_is_not_usable(site):
    root, wal = site
    os.remove(os.path.join(root, "base", "20261128T030000Z", "backup_manifest"))
    assert window(root, wal)["earliest"]["backup"] == "20261129T030000Z"


def test_follows_timeline_switch(tmp_path):
    root, wal = str(tmp_path / "b"), str(tmp_path / "w")
    make_base(root, T0, 2, 2)
    make_wal(wal, 1, [2, 3, 4], T0)                       # tli 1 to 4 (the 5th was left .partial)
    make_history(wal, 2, [(1, "0/5000060", "promote")])
    make_wal(wal, 2, [5, 6], T0 + timedelta(hours=1))     # tli 2 carries the switch segment
    win = window(root, wal)
    assert win["latest"]["segment"] == "000000020000000000000006"
    os.remove(os.path.join(wal, "000000020000000000000005"))
    win = window(root, wal)
    assert win["latest"]["segment"] == "000000010000000000000004"
    assert win["latest"]["first_missing"] == "000000020000000000000005"


def test_offsite_uses_shipped_bundles(tmp_path, site):
    root, wal = site
    offsite = str(tmp_path / "off")
    shutil.copytree(os.path.join(root, "base"), os.path.join(offsite, "base"))
    make_incremental(offsite, T0 + timedelta(hours=4), wal, ["00000001000000000000000%d" % n for n in (2, 3, 4)])
    off_cat = bc.scan(offsite)
    assert recovery_window(off_cat)["recoverable"] is False
    win = recovery_window(off_cat, offsite=True)
    assert win["latest"]["segment"] == "000000010000000000000004"
    assert win["latest"]["time"] == "2026-11-28T07:00:00Z"
    merged = recovery_window(bc.scan(root, wal), offsite=off_cat)
    assert merged["latest"]["segment"] == "000000010000000000000009"


def test_rejects_non_catalogue():
    with pytest.raises(AnsibleFilterError):
        recovery_window({"x": 1})
    with pytest.raises(AnsibleFilterError):
        recovery_window({"backups": []}, offsite="yes")
