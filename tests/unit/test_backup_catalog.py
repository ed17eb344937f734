"""The catalogue of a synthetic backup tree."""

import os
from datetime import timedelta

import pytest
from backup_fixtures import T0, make_base, make_dump, make_history, make_incremental, make_wal, touch

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_catalog as bc


@pytest.fixture
def tree(tmp_path):
    root, wal = str(tmp_path / "backups"), str(tmp_path / "wal")
    make_dump(root, T0)
    make_dump(root, T0 + timedelta(days=1), data=b"second")
    make_base(root, T0, 2, 3)
    make_wal(wal, 1, [1, 2, 3, 4, 6, 7], T0 - timedelta(minutes=10))
    make_incremental(root, T0 + timedelta(hours=4), wal, ["000000010000000000000004"])
    touch(os.path.join(root, "backup_20250102.dump"), T0, b"legacy")
    touch(os.path.join(root, "notes.dump"), T0, b"not a backup")
    os.makedirs(os.path.join(root, "files", "20261128T030000Z", "uploads"))
    return root, wal


def by_name(catalog):
    return {b["name"] if b["kind"] != "base" else "base " + b["name"]: b for b in catalog["backups"]}


def test_scan_lists_every_kind_oldest_first(tree):
    root, wal = tree
    cat = bc.scan(root, wal)
    kinds = [(b["kind"], b["name"]) for b in cat["backups"]]
    assert kinds[0] == ("dump", "backup_20250102.dump")
    assert {k for k, _unused in kinds} == {"dump", "base", "incremental", "files"}
    assert "notes.dump" not in dict((n, k) for k, n in kinds)
    times = [bc.epoch(b["time"]) for b in cat["backups"]]
    assert times == sorted(times)


def test_dump_checksum_states(tree):
    root, wal = tree
    first = os.path.join(root, "dumps", "health_butler_20261128T030000Z.dump")
    with open(first, "r+b") as fh:
        fh.write(b"X")
    os.remove(os.path.join(root, "dumps", "health_butler_20261129T030000Z.dump.sha256"))
    cat = by_name(bc.scan(root, wal))
    assert cat["health_butler_20261128T030000Z.dump"]["checksum"]["state"] == "mismatch"
    assert cat["health_butler_20261129T030000Z.dump"]["checksum"]["state"] == "missing"
    assert cat["health_butler_20261128T030000Z.dump"]["time"] == "2026-11-28T03:00:00Z"
    assert cat["backup_20250102.dump"]["time"] == "2025-01-02T00:00:00Z"
    assert cat["backup_20250102.dump"]["legacy"] is True
    unchecked = by_name(bc.scan(root, wal, verify_checksums=False))
    assert unchecked["health_butler_20261128T030000Z.dump"]["checksum"]["state"] == "unchecked"


def test_legacy_pattern_is_configurable(tree):
    root, wal = tree
    touch(os.path.join(root, "hb-20250103-0415.dump"), T0, b"x")
    assert "hb-20250103-0415.dump" not in by_name(bc.scan(root, wal))
    cat = by_name(bc.scan(root, wal, legacy_pattern=r"^hb-(?P<date>\d{8})-(?P<hhmm>\d{4})\.dump$"))
    assert "backup_20250102.dump" not in cat
    assert cat["hb-20250103-0415.dump"]["time"] == "2025-01-03T00:00:00Z"


def test_base_backup_fields_from_label_and_manifest(tree):
    root, wal = tree
    os.remove(os.path.join(root, "base", "20261128T030000Z.json"))
    base = by_name(bc.scan(root, wal))["base 20261128T030000Z"]
    assert base["start_lsn"] == "0/2000028"
    assert base["stop_lsn"] == "0/3000100"
    assert base["timeline"] == 1
    assert base["start_wal"] == "000000010000000000000002"
    assert base["stop_wal"] == "000000010000000000000003"
    assert base["has_manifest"] and base["checksum"]["state"] == "ok"
    assert base["stop_time"] == "2026-11-28T03:00:00Z"


def test_manifest_tampering_and_absence(tree):
    root, wal = tree
    manifest = os.path.join(root, "base", "20261128T030000Z", "backup_manifest")
    with open(manifest, "rb") as fh:
        raw = fh.read()
    with open(manifest, "wb") as fh:
        fh.write(raw.replace(b'"Size": 1', b'"Size": 2'))
    assert by_name(bc.scan(root, wal))["base 20261128T030000Z"]["checksum"]["state"] == "mismatch"
    os.remove(manifest)
    base = by_name(bc.scan(root, wal))["base 20261128T030000Z"]
    assert base["has_manifest"] is False and base["checksum"]["state"] == "missing"


def test_incremental_bundle_checksums(tree):
    root, wal = tree
    inc = [b for b in bc.scan(root, wal)["backups"] if b["kind"] == "incremental"][0]
    assert inc["checksum"]["state"] == "ok" and inc["segments"] == ["000000010000000000000004"]
    with open(os.path.join(inc["path"], "000000010000000000000004"), "ab") as fh:
        fh.write(b"!")
    inc = [b for b in bc.scan(root, wal)["backups"] if b["kind"] == "incremental"][0]
    assert inc["checksum"]["state"] == "mismatch" and inc["checksum"]["bad"] == ["000000010000000000000004"]


def test_wal_first_last_gaps_history(tree):
    root, wal = tree
    make_history(wal, 2, [(1, "0/8000000", "promoted")])
    make_wal(wal, 2, [8, 9], T0 + timedelta(hours=2))
    touch(os.path.join(wal, "000000010000000000000008.partial"), T0)
    cat = bc.scan(root, wal)["wal"]
    assert cat["first"] == "000000010000000000000001"
    assert cat["last"] == "000000020000000000000009"
    assert cat["count"] == 8
    assert cat["gaps"] == [{"after": "000000010000000000000004", "missing_first": "000000010000000000000005",
                            "missing_last": "000000010000000000000005", "timeline": 1}]
    assert cat["timelines"] == [1, 2]
    assert cat["history"]["2"][0]["switch_lsn"] == "0/8000000"
    assert cat["partial"] == ["000000010000000000000008.partial"]
    assert cat["newest_time"] == "2026-11-28T05:10:00Z"


def test_missing_locations_are_reported_not_raised(tmp_path):
    cat = bc.scan(str(tmp_path / "none"), str(tmp_path / "nowal"))
    assert cat["exists"] is False and cat["backups"] == [] and cat["wal"]["exists"] is False


def test_summary_and_newest(tree):
    root, wal = tree
    cat = bc.scan(root, wal)
    summary = bc.summary(cat)
    assert summary["dump"]["count"] == 3
    assert summary["dump"]["newest_name"] == "health_butler_20261129T030000Z.dump"
    assert summary["wal"]["gaps"] == 1
    assert bc.newest(cat, "base")["name"] == "20261128T030000Z"
    assert bc.newest(cat, "nothing") is None


@pytest.mark.parametrize("text,expected", [
    ("2026-11-28T03:00:00Z", "2026-11-28T03:00:00Z"),
    ("2026-11-28 03:00:00 UTC", "2026-11-28T03:00:00Z"),
    ("2026-11-28T04:00:00+01:00", "2026-11-28T03:00:00Z"),
    ("20261128T030000Z", "2026-11-28T03:00:00Z"),
])
def test_time_parsing(text, expected):
    assert bc.iso(bc.parse_time(text)) == expected


def test_diagnose_section_ages_and_window(tree):
    root, wal = tree
    out = bc.diagnose_section(root, wal, now="2026-11-29T05:00:00Z")
    assert out["kinds"]["dump"]["age_hours"] == 2.0
    assert out["window"]["recoverable"] is True and out["wal_gaps"][0]["missing_first"].endswith("05")
