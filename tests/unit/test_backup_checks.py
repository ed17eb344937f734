"""Integrity checks with a scripted runner; report rendering parsed by real parsers."""

import os
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from backup_fixtures import T0, make_base, make_dump, make_history, make_wal
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_catalog as bc
from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_checks as ck
from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_report


def dump_entry(tmp_path, data=b"PGDMP...", corrupt=False, sidecar=True):
    root = str(tmp_path / "b")
    path = make_dump(root, T0, data=data, sidecar=sidecar)
    if corrupt:
        with open(path, "r+b") as fh:
            fh.write(b"Z")
    return [e for e in bc.scan(root)["backups"] if e["kind"] == "dump"][0]


def test_dump_ok_needs_sidecar_and_full_read(tmp_path, fake_runner):
    fake_runner.add(r"pg_restore -f /dev/null", 0)
    item = ck.dump_check(fake_runner, dump_entry(tmp_path))
    assert item["status"] == ck.OK and item["name"].startswith("dump_integrity[health_butler_")
    assert fake_runner.calls[0]["argv"][:3] == ["pg_restore", "-f", "/dev/null"]


def test_dump_full_read_failure_is_failed(tmp_path, fake_runner):
    fake_runner.add(r"pg_restore", 1, "", "pg_restore: error: could not read input file: end of file")
    item = ck.dump_check(fake_runner, dump_entry(tmp_path))
    assert item["status"] == ck.FAILED and "end of file" in item["evidence"]


def test_dump_checksum_mismatch_fails_without_reading(tmp_path, fake_runner):
    item = ck.dump_check(fake_runner, dump_entry(tmp_path, corrupt=True))
    assert item["status"] == ck.FAILED and "does not match" in item["evidence"]
    assert fake_runner.calls == []


def test_empty_dump_fails(tmp_path, fake_runner):
    assert ck.dump_check(fake_runner, dump_entry(tmp_path, data=b""))["status"] == ck.FAILED


def test_dump_without_sidecar_is_a_warning_after_a_good_read(tmp_path, fake_runner):
    fake_runner.add(r"pg_restore", 0)
    assert ck.dump_check(fake_runner, dump_entry(tmp_path, sidecar=False))["status"] == ck.WARNING


def test_base_check(tmp_path, fake_runner):
    root = str(tmp_path / "b")
    make_base(root, T0, 2)
    entry = [e for e in bc.scan(root)["backups"] if e["kind"] == "base"][0]
    fake_runner.add(r"pg_verifybackup -w /wal", 1, "", 'pg_verifybackup: error: "base/1/1259" has size 9 on disk')
    item = ck.base_check(fake_runner, entry, "/wal")
    assert item["status"] == ck.FAILED and "1259" in item["evidence"]
    os.remove(os.path.join(entry["path"], "backup_manifest"))
    entry = [e for e in bc.scan(root)["backups"] if e["kind"] == "base"][0]
    assert "backup_manifest" in ck.base_check(fake_runner, entry, "/wal")["evidence"]


def test_wal_continuity_names_first_missing_across_timelines(tmp_path):
    root, wal = str(tmp_path / "b"), str(tmp_path / "w")
    make_base(root, T0, 2)
    make_wal(wal, 1, [2, 3, 4], T0)
    make_history(wal, 2, [(1, "0/5000000", "promote")])
    make_wal(wal, 2, [5, 6, 7], T0)
    assert ck.wal_continuity_check(bc.scan(root, wal))["status"] == ck.OK
    os.remove(os.path.join(wal, "000000020000000000000006"))
    item = ck.wal_continuity_check(bc.scan(root, wal))
    assert item["status"] == ck.FAILED and item["first_missing"] == "000000020000000000000006"
    assert ck.wal_continuity_check(bc.scan(str(tmp_path / "none"), wal))["status"] == ck.FAILED


@pytest.mark.parametrize("row,status", [
    ({"mode": "off", "command": ""}, ck.FAILED),
    ({"mode": "on", "command": "test ! -f /a/%f && cp %p /a/%f", "last_archived": "2026-11-28T03:00:00Z",
      "last_failed": "2026-11-28T04:00:00Z"}, ck.FAILED),
    ({"mode": "on", "command": "cp %p /a/%f", "last_archived": "2026-11-28T03:00:00Z"}, ck.WARNING),
    ({"mode": "on", "command": "test ! -f /a/%f && cp %p /a/%f", "last_archived": "2026-11-28T05:00:00Z",
      "last_failed": "2026-11-28T04:00:00Z"}, ck.OK),
])
def test_judge_archiving(row, status):
    assert ck.judge_archiving(row, "/a")["status"] == status


def test_policy_checks_group_by_area():
    out = {c["name"]: c["status"] for c in ck.policy_checks([
        {"kind": "full_stale", "severity": "failed", "message": "old"},
        {"kind": "retention_short", "severity": "warning", "message": "young"}])}
    assert out == {"policy_full_backup_age": ck.FAILED, "policy_incremental_interval": ck.OK,
                   "policy_retention": ck.WARNING, "policy_offsite": ck.OK}


def test_window_check_age_boundary():
    window = {"recoverable": True, "earliest": {"time": "2026-11-28T03:00:00Z", "backup": "b"},
              "latest": {"time": "2026-11-28T04:00:00Z", "segment": "s"}}
    now = bc.epoch("2026-11-28T04:00:00Z")
    assert ck.window_check(window, now + 60, 60)["status"] == ck.OK
    assert ck.window_check(window, now + 61, 60)["status"] == ck.WARNING
    assert ck.window_check({"recoverable": False, "reason": "x"}, now, 60)["status"] == ck.FAILED


def sample_report():
    checks = [ck.check("catalog", ck.OK, "3 backups"), ck.check('dump_integrity[a "q".dump]', ck.FAILED, "end of file"),
              ck.check("policy_retention", ck.WARNING, "young")]
    return {"generated_at": "2026-11-28T04:00:00Z", "generated_at_ts": bc.epoch("2026-11-28T04:00:00Z"),
            "summary": ck.summarise(checks), "checks": checks, "violations": [{"kind": "x"}],
            "newest": {"dump": {"age_seconds": 3600.0}, "base": {"age_seconds": 60.0}},
            "window": {"recoverable": True, "earliest": {"time": "2026-11-28T03:00:00Z", "backup": "b"},
                       "latest": {"time": "2026-11-28T03:59:00Z", "segment": "s"}}}


def test_prometheus_text_parses_and_keeps_last_success(tmp_path):
    report = sample_report()
    text = backup_report.prometheus(report, last_success=1234.0)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["hb_backup_verify_last_success_timestamp_seconds"].samples[0].value == 1234.0
    status = {s.labels["check"]: s.value for s in families["hb_backup_verify_check_status"].samples}
    assert status == {"catalog": 0, 'dump_integrity[a "q".dump]': 2, "policy_retention": 1}
    ages = {s.labels["kind"]: s.value for s in families["hb_backup_newest_age_seconds"].samples}
    assert ages == {"dump": 3600, "base": 60}
    assert families["hb_backup_recoverable_until_timestamp_seconds"].samples[0].value == bc.epoch(
        "2026-11-28T03:59:00Z")
    paths = backup_report.write_all(report, str(tmp_path / "r"))
    assert backup_report.previous_success(paths["prometheus"]) == 0
    report["summary"] = ck.summarise([ck.check("catalog", ck.OK, "")])
    backup_report.write_all(report, str(tmp_path / "r"))
    assert backup_report.previous_success(paths["prometheus"]) == report["generated_at_ts"]


def test_junit_has_one_testcase_per_check():
    suite = ET.fromstring(backup_report.junit(sample_report()))
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["catalog", 'dump_integrity[a "q".dump]', "policy_retention"]
    assert suite.get("failures") == "1" and cases[1].find("failure") is not None
    assert cases[2].find("failure") is None


def test_markdown_summary():
    text = backup_report.markdown(sample_report())
    assert "**Result: FAILED**" in text and "| policy_retention | WARNING | young |" in text


def test_run_all_without_scratch(tmp_path, fake_runner):
    root, wal = str(tmp_path / "b"), str(tmp_path / "w")
    now = T0 + timedelta(minutes=30)
    make_dump(root, T0)
    make_base(root, T0, 2)
    make_wal(wal, 1, [2, 3], T0)
    fake_runner.add(r"pg_restore", 0).add(r"pg_verifybackup", 0, "backup successfully verified")
    report = ck.run_all(fake_runner, {"backup_dir": root, "wal_dir": wal, "policy": {"offsite_required": False}},
                        now.timestamp())
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert status["wal_continuity"] == ck.OK and status["recovery_window"] == ck.OK
    assert status["policy_full_backup_age"] == ck.OK
    assert report["window"]["latest"]["segment"] == "000000010000000000000003"


def test_a_missing_backup_or_wal_directory_fails_the_catalogue_saying_so(tmp_path, fake_runner):
    root = str(tmp_path / "b")
    make_dump(root, T0)
    fake_runner.add(r"pg_restore", 0).add(r"pg_verifybackup", 0, "backup successfully verified")
    options = {"backup_dir": root, "wal_dir": "/nonexistent", "policy": {"offsite_required": False}}
    report = ck.run_all(fake_runner, options, (T0 + timedelta(minutes=30)).timestamp())
    catalog = next(c for c in report["checks"] if c["name"] == "catalog")
    assert catalog["status"] == ck.FAILED
    assert catalog["evidence"].startswith("WAL archive directory /nonexistent does not exist")
    report = ck.run_all(fake_runner, {"backup_dir": "/nope", "wal_dir": "/nonexistent"}, T0.timestamp())
    assert "backup directory /nope does not exist" in report["checks"][0]["evidence"]


def test_run_all_with_remote_offsite_judges_presence_from_rsync(tmp_path, fake_runner):
    root, wal = str(tmp_path / "b"), str(tmp_path / "w")
    now = T0 + timedelta(minutes=30)
    dump = make_dump(root, T0)
    make_base(root, T0, 2)
    make_wal(wal, 1, [2, 3], T0)
    fake_runner.add(r"pg_restore", 0).add(r"pg_verifybackup", 0, "ok")
    fake_runner.add(r"rsync", 0, ">f+++++++++ dumps/%s\n" % os.path.basename(dump))
    report = ck.run_all(fake_runner, {"backup_dir": root, "wal_dir": wal, "offsite": "backup-host:/srv/off"},
                        now.timestamp())
    got = {c["name"]: c for c in report["checks"]}
    assert got["offsite_copy"]["status"] == ck.FAILED and "(missing)" in got["offsite_copy"]["evidence"]
    offsite = [v for v in report["violations"] if v["kind"] == "offsite_missing"]
    assert offsite and offsite[0]["items"] == [os.path.basename(dump)]
