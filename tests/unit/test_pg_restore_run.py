"""Dump restore: dump inspection, TOC parsing, count comparison, swap and roll-back (fake runner)."""

import datetime as dt
import hashlib
import json

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import pg_restore_run as pr
from ansible_collections.healthbutler.recovery.plugins.module_utils import preserved
from ansible_collections.healthbutler.recovery.plugins.module_utils.pitr_exec import ExecError, PgServer

TOC = """\
;
; Archive created at 2026-11-28 23:50:18 UTC
;     dbname: health_butler
3345; 1259 16390 TABLE public health_data health_butler
3346; 0 16390 TABLE DATA public health_data health_butler
3347; 0 16380 TABLE DATA public users health_butler
3350; 0 0 SEQUENCE SET public users_id_seq health_butler
"""


def test_toc_lists_table_data_entries():
    assert pr.toc_tables(TOC) == ["public.health_data", "public.users"]


def test_counts_are_compared_with_toc_and_metadata():
    toc = ["public.health_data", "public.users"]
    assert pr.compare_counts(toc, {"public.health_data": 10, "public.users": 2},
                             {"public.health_data": 10, "public.users": 2}) == []
    problems = pr.compare_counts(toc, {"public.health_data": 10}, {"public.health_data": 9})
    assert "public.health_data has 9 rows, the dump's metadata says 10" in problems[0]
    assert "public.users is in the dump but not in the restored database" in problems[1]


def test_dump_inspection_checks_sidecars(tmp_path):
    dump = tmp_path / "hb_20261128T000000Z.dump"
    dump.write_bytes(b"PGDMP data")
    (tmp_path / (dump.name + ".sha256")).write_text("%s  %s\n" % (hashlib.sha256(b"PGDMP data").hexdigest(), dump.name))
    (tmp_path / (dump.name + ".json")).write_text(json.dumps({"tables": {"public.users": 2}}))
    info = pr.inspect_dump(str(dump))
    assert info["checksum"] == "ok" and info["problems"] == [] and info["meta"]["tables"]["public.users"] == 2
    dump.write_bytes(b"PGDMP dat4")
    info = pr.inspect_dump(str(dump))
    assert info["checksum"] == "mismatch" and "does not match its checksum" in info["problems"][0]
    assert "does not exist" in pr.inspect_dump(str(tmp_path / "nope.dump"))["problems"][0]
    empty = tmp_path / "empty.dump"
    empty.write_bytes(b"")
    assert "is empty" in pr.inspect_dump(str(empty))["problems"][0]


def test_full_read_failure_is_refused(fake_runner):
    fake_runner.add(r"pg_restore -f /dev/null", rc=1,
                    stderr="pg_restore: error: could not read from input file: end of file")
    with pytest.raises(ExecError) as err:
        pr.read_dump(fake_runner, "pg_restore", "/b/x.dump")
    assert "does not read back" in err.value.msg and "end of file" in err.value.msg


def server(runner):
    return PgServer(runner, "/usr/lib/postgresql/15/bin", "postgres", None, 55432, "/run/pg")


NAMES = {"scratch": "hb_restore_S", "preserved": "hb_pre_restore_S", "failed": "hb_failed_restore_S"}


def scripted(fake_runner, restore_rc=0, restored_counts=None):
    counts = restored_counts or {"public.users": 2}
    fake_runner.add(r"pg_get_userbyid", stdout='"hb_app"')
    fake_runner.add(r"CREATE DATABASE", stdout="1")
    fake_runner.add(r"bin/pg_restore .*-d hb_restore_S", rc=restore_rc, stderr="pg_restore: error: killed")
    fake_runner.add(r"'users', \(SELECT count", stdout='{"users": 2, "latest_health_data": [], "table_sizes": {}}')
    fake_runner.add(r"(?s)-d hb_restore_S.*query_to_xml", stdout=json.dumps(counts))
    fake_runner.add(r"query_to_xml", stdout='{"public.users": 1}')
    fake_runner.add(r"pg_terminate_backend", stdout="0")
    fake_runner.add(r"ALTER DATABASE|DROP DATABASE", stdout="1")
    fake_runner.add(r"EXISTS \(SELECT 1 FROM pg_database WHERE datname = 'hb_pre_restore_S'\)", stdout="false")
    fake_runner.add(r"EXISTS \(SELECT 1 FROM pg_database WHERE datname = 'hb_restore_S'\)", stdout="true")
    return fake_runner


def sql_lines(fake_runner, word):
    return [c["data"] for c in fake_runner.calls if c["data"] and word in c["data"]]


def test_beside_restores_validates_and_swaps_by_rename(fake_runner):
    scripted(fake_runner)
    result = pr.restore_beside(fake_runner, server(fake_runner), "/b/x.dump", "hb", NAMES, 2, ["public.users"],
                               {"tables": {"public.users": 2}})
    renames = sql_lines(fake_runner, "RENAME")
    assert 'ALTER DATABASE "hb" RENAME TO "hb_pre_restore_S"' in renames[0]
    assert 'ALTER DATABASE "hb_restore_S" RENAME TO "hb"' in renames[1]
    restore = next(c["argv"] for c in fake_runner.calls if any(a.endswith("bin/pg_restore") for a in c["argv"]))
    assert "--exit-on-error" in restore and restore[restore.index("-j") + 1] == "2"
    assert "rows_before" not in result and result["rows_after"] == {"public.users": 2}  # before: the pre-flight's
    assert not [c for c in fake_runner.calls if c["data"] and "query_to_xml" in c["data"] and "hb_restore_S"
                not in " ".join(c["argv"])]  # the live database is not counted during the downtime
    assert result["preserved_db"] == "hb_pre_restore_S"


def test_beside_a_checksum_computed_during_the_restore_gates_the_swap(fake_runner, tmp_path):
    dump = tmp_path / "x.dump"
    dump.write_bytes(b"changed after the pre-flight")
    scripted(fake_runner)
    check = pr.ChecksumThread(str(dump), "0" * 64)
    check.start()
    with pytest.raises(ExecError) as err:
        pr.restore_beside(fake_runner, server(fake_runner), str(dump), "hb", NAMES, 2, ["public.users"],
                          {"tables": {"public.users": 2}}, checksum=check)
    assert err.value.step == "checksum" and "does not match its checksum" in err.value.msg
    assert not sql_lines(fake_runner, "RENAME")  # nothing live was touched
    assert err.value.details["rollback"]["actions"] == ["dropped the partial scratch database hb_restore_S"]


def test_the_pre_flight_full_read_can_be_left_to_the_restore(fake_runner):
    fake_runner.add(r"pg_restore --list", stdout="3; 2615 16390 TABLE DATA public users hb\n")
    assert pr.read_dump(fake_runner, "pg_restore", "/b/x.dump", full=False) == ["public.users"]
    assert not [c for c in fake_runner.calls if "/dev/null" in c["argv"]]


def test_beside_failure_before_swap_drops_only_the_scratch_db(fake_runner):
    scripted(fake_runner, restore_rc=137)
    with pytest.raises(ExecError) as err:
        pr.restore_beside(fake_runner, server(fake_runner), "/b/x.dump", "hb", NAMES, 1, ["public.users"], None)
    assert err.value.step.startswith("pg_restore -j 1")
    assert err.value.details["rollback"]["actions"] == ["dropped the partial scratch database hb_restore_S"]
    assert not sql_lines(fake_runner, "RENAME")
    assert 'DROP DATABASE "hb_restore_S"' in sql_lines(fake_runner, "DROP")[0]


def test_beside_count_mismatch_fails_validation(fake_runner):
    scripted(fake_runner, restored_counts={"public.users": 1})
    with pytest.raises(ExecError) as err:
        pr.restore_beside(fake_runner, server(fake_runner), "/b/x.dump", "hb", NAMES, 1, ["public.users"],
                          {"tables": {"public.users": 2}})
    assert "public.users has 1 rows, the dump's metadata says 2" in err.value.msg


def test_preserved_copies_are_found_by_exact_name_and_age(tmp_path):
    (tmp_path / "pgdata").mkdir()
    (tmp_path / "pgdata.pre_pitr_20261101T000000Z").mkdir()
    (tmp_path / "pgdata.failed_pitr_20261127T000000Z").mkdir()
    (tmp_path / "pgdata.other").mkdir()
    (tmp_path / "pgdata2.pre_pitr_20261101T000000Z").mkdir()
    items = preserved.data_dir_copies(str(tmp_path / "pgdata"))
    assert [i["name"].rsplit("/", 1)[1] for i in items] == ["pgdata.failed_pitr_20261127T000000Z",
                                                            "pgdata.pre_pitr_20261101T000000Z"]
    dbs = preserved.database_copies("hb", ["hb", "hb_pre_restore_20261101T000000Z", "hbx_pre_restore_20261101T000000Z",
                                           "hb_restore_20261101T000000Z"])
    assert [d["name"] for d in dbs] == ["hb_pre_restore_20261101T000000Z"]
    now = dt.datetime(2026, 11, 28, tzinfo=dt.timezone.utc)
    aged = preserved.older_than(items + dbs, now, 7)
    assert [(a["remove"], a["age_days"]) for a in aged] == [(False, 1.0), (True, 27.0), (True, 27.0)]


def preflight_case(fake_runner, tmp_path, strategy, taken=False):
    dump = tmp_path / "dumps" / "x.dump"
    dump.parent.mkdir()
    dump.write_bytes(b"PGDMP fake archive")
    (tmp_path / "dumps" / "x.dump.sha256").write_text(hashlib.sha256(dump.read_bytes()).hexdigest() + "  x.dump\n")
    fake_runner.add(r"pg_restore --list", stdout="3; 2615 16390 TABLE DATA public users hb\n")
    fake_runner.add(r"pg_restore -f /dev/null", stdout="")
    fake_runner.add(r"datname = 'hb'\)", stdout="true")
    fake_runner.add(r"EXISTS \(SELECT 1 FROM pg_database", stdout="true" if taken else "false")
    fake_runner.add(r"pg_database_size", stdout=json.dumps({"size": 1024, "data_dir": str(tmp_path)}))
    fake_runner.add(r"query_to_xml", stdout='{"public.users": 1}')
    plan = {"dump": str(dump), "strategy": strategy, "databases": NAMES}
    return plan, lambda **kw: pr.preflight(fake_runner, server(fake_runner), plan, str(tmp_path), "hb", **kw)


def test_preflight_beside_with_a_checksum_leaves_the_full_read_to_the_restore(fake_runner, tmp_path):
    plan, run = preflight_case(fake_runner, tmp_path, "beside")
    info, rows = run()
    assert info["checksum"] == "ok" and rows == {"public.users": 1} and plan["toc_tables"] == ["public.users"]
    assert plan["read_in_full"].startswith("by the restore into hb_restore_S")
    assert not [c for c in fake_runner.calls if "/dev/null" in c["argv"]]


def test_preflight_in_place_reads_in_full_and_a_deferred_checksum_counts_nothing(fake_runner, tmp_path):
    plan, run = preflight_case(fake_runner, tmp_path, "in_place")
    info, rows = run(defer_checksum=True, count_rows=False)
    assert info["checksum"] == "deferred" and rows is None and plan["read_in_full"] == "pre-flight"
    assert [c for c in fake_runner.calls if "/dev/null" in c["argv"]]


def test_preflight_refuses_taken_names_and_a_missing_dump(fake_runner, tmp_path):
    _plan, run = preflight_case(fake_runner, tmp_path, "beside", taken=True)
    with pytest.raises(pr.PreflightError, match="already exist; use a new run_stamp"):
        run()
    missing = {"dump": str(tmp_path / "dumps" / "nope.dump"), "strategy": "beside", "databases": NAMES}
    with pytest.raises(pr.PreflightError, match="does not exist; dumps in .*: x.dump"):
        pr.preflight(fake_runner, server(fake_runner), missing, str(tmp_path), "hb")
    assert pr.resolve_dump("latest", str(tmp_path)).endswith("dumps/x.dump")
