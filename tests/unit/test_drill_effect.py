"""Effect probes: each kind on both sides, the bounded wait, placeholders and bad specifications."""

import json

import pytest
from conftest import FakeRunner
from fakes import Clock

from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_catalog
from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_effect as effect
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import Conn

CONN = Conn(host="/run/pg", port=55432, dbname="health_butler")


def test_a_look_that_never_sees_the_fault_ends_at_its_bound_with_the_last_observation():
    clock = Clock()
    looks = iter(range(100))
    result = effect.wait_for(lambda: (False, "look %d: 201 written" % next(looks)), timeout=10, interval=2,
                             clock=clock, sleep=clock.sleep, wall=lambda: 1000.0)
    assert result["seen"] is False
    assert result["attempts"] == 6 and result["waited_s"] == 10
    assert result["observation"] == "look 5: 201 written"
    assert result["bound_s"] == 10


def test_the_first_look_that_sees_the_fault_stops_the_wait_and_counts_from_the_injection():
    clock = Clock()
    answers = iter([(False, "200"), (False, "200"), (True, "no answer")])
    since = "2026-12-01T10:00:00.000Z"
    wall = effect._epoch(since) + 2.5
    result = effect.wait_for(lambda: next(answers), timeout=30, interval=1, since=since, clock=clock,
                             sleep=clock.sleep, wall=lambda: wall)
    assert result["seen"] is True and result["attempts"] == 3 and result["observation"] == "no answer"
    assert result["after_injection_s"] == 2.5 and result["observed_at"] == "2026-12-01T10:00:02.500Z"


@pytest.mark.parametrize("answer, spec, seen", [
    ({"status": 0, "error": "Connection refused", "body": ""}, {"status": [0]}, True),
    ({"status": 200, "error": None, "body": '{"status":"ok"}'}, {"status": [0]}, False),
    ({"status": 503, "error": None, "body": '{"failed":["database"]}'}, {"status": [503], "body_regex": "database"},
     True),
    ({"status": 503, "error": None, "body": '{"failed":["redis"]}'}, {"status": [503], "body_regex": "database"},
     False),
    ({"status": 500, "error": None, "body": '{"error":"remaining connection slots are reserved for non-replication '
                                            'superuser connections"}'},
     {"status": [500], "body_regex": "too many clients|remaining connection slots"}, True),
    ({"status": 201, "error": None, "body": '{"id": 7}'},
     {"status": [500], "body_regex": "too many clients|remaining connection slots"}, False),
])
def test_http_probe(answer, spec, seen):
    calls = []

    def fetch(url, timeout, method, body):
        calls.append((url, method, body))
        return answer

    got, observation = effect.look_http(dict(spec, url="http://127.0.0.1:53000/health"), fetch=fetch)
    assert got is seen
    assert observation.startswith("GET http://127.0.0.1:53000/health: ")
    assert calls == [("http://127.0.0.1:53000/health", "GET", None)]


def test_sql_probe_sees_the_lock_by_its_error_and_not_without_it():
    spec = drill_catalog.SCENARIOS["lock_contention"]["effect"]
    blocked = FakeRunner().add("psql", rc=3, stderr='ERROR:  could not obtain lock on relation "health_data"\n')
    assert effect.look_sql(spec, blocked, CONN) == (
        True, 'the statement failed as the fault makes it: ERROR: could not obtain lock on relation "health_data"')
    free = FakeRunner().add("psql", stdout=json.dumps({"seen": False, "observation": "granted at once"}) + "\n")
    assert effect.look_sql(spec, free, CONN) == (False, "granted at once")
    argv = free.calls[0]["argv"]
    assert argv[:7] == ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"] and "health_butler" in argv
    assert "LOCK TABLE health_data IN ROW EXCLUSIVE MODE NOWAIT" in free.calls[0]["data"]


def test_sql_probe_failing_otherwise_is_not_seen_and_says_why():
    broken = FakeRunner().add("psql", rc=2, stderr='psql: error: connection to server on socket failed\n')
    seen, observation = effect.look_sql({"sql": "SELECT 1", "error_regex": "could not obtain lock"}, broken, CONN)
    assert not seen and observation.startswith("psql failed (rc=2): psql: error: connection")


def test_pm2_log_probe_reads_the_log_pm2_names(tmp_path):
    log = tmp_path / "health-butler-error.log"
    log.write_text("request failed: x\n<--- Last few GCs --->\nFATAL ERROR: Reached heap limit Allocation failed - "
                   "JavaScript heap out of memory\n")
    jlist = "[PM2] Spawning PM2 daemon\n" + json.dumps([{"name": "health-butler",
                                                         "pm2_env": {"pm_err_log_path": str(log)}}])
    runner = FakeRunner().add("jlist", stdout=jlist)
    spec = drill_catalog.SCENARIOS["memory_leak"]["effect"]
    seen, observation = effect.look_pm2_log(dict(spec, app="health-butler"), runner, "pm2", "/pm2home")
    assert seen and "1 line(s)" in observation and "JavaScript heap out of memory" in observation
    assert runner.calls[0]["env"] == {"PM2_HOME": "/pm2home"}
    log.write_text("request failed: x\n")
    assert effect.look_pm2_log(dict(spec, app="health-butler"), runner, "pm2", "/pm2home")[0] is False
    assert effect.look_pm2_log(dict(spec, app="other"), runner, "pm2", "/p") == (
        False, "PM2 knows no app 'other' with an error log")


def test_files_missing_probe(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "1.jpg").write_text("x")
    spec = {"root": str(tmp_path), "paths": ["./a/1.jpg", "./a/2.jpg"]}
    assert effect.look_files_missing(spec) == (False, "1 of 2 removed file(s) still present, e.g. %s/./a/1.jpg"
                                               % tmp_path)
    (tmp_path / "a" / "1.jpg").unlink()
    assert effect.look_files_missing(spec) == (True, "2 of 2 file(s) missing under %s" % tmp_path)
    assert effect.look_files_missing({"root": str(tmp_path), "paths": []})[0] is False


def test_checksum_probe(tmp_path):
    dump = tmp_path / "hb_1.dump"
    dump.write_bytes(b"PGDMP" + b"\0" * 100)
    digest = effect.sha256_file(str(dump))
    (tmp_path / "hb_1.dump.sha256").write_text("%s  hb_1.dump\n" % digest)
    assert effect.look_checksum({"path": str(dump)}) == (False, "hb_1.dump still matches its sidecar")
    dump.write_bytes(b"PGDMP" + b"\1" * 100)
    seen, observation = effect.look_checksum({"path": str(dump)})
    assert seen and observation.endswith("its sidecar says %s…" % digest[:12])
    assert effect.look_checksum({"path": str(tmp_path / "none.dump")})[0] is False


def test_resolve_fills_placeholders_and_the_site():
    facts = {"corrupted_dump": "/b/dumps/hb_1.dump", "removed_uploads": ["./2026/1.jpg"]}
    http = effect.resolve(drill_catalog.SCENARIOS["db_down"]["effect"], facts, app_url="http://127.0.0.1:53000/")
    assert http["url"] == "http://127.0.0.1:53000/health"
    assert effect.resolve(drill_catalog.SCENARIOS["corrupt_backup"]["effect"], facts)["path"] == "/b/dumps/hb_1.dump"
    files = effect.resolve(drill_catalog.SCENARIOS["uploads_lost"]["effect"], facts, uploads_dir="/up")
    assert files["paths"] == ["./2026/1.jpg"] and files["root"] == "/up"
    assert effect.fill("x {a} {b}", {"a": 1}) == "x 1 {b}"
    assert effect.host_role("sql") == "db" and effect.host_role("http") == "controller"


@pytest.mark.parametrize("spec, message", [
    ({"kind": "ping"}, "effect probe kind 'ping' is not one of http, sql, pm2_log, files_missing, checksum, pg_down"),
    ({"kind": "checksum", "path": "{corrupted_dump}"}, None),
    ({"kind": "sql"}, "effect probe sql needs sql"),
    ({"kind": "pm2_log", "regex": "x"}, "effect probe pm2_log needs app"),
])
def test_bad_probe_specifications_are_named(spec, message):
    if message is None:
        effect.validate(spec)
        return
    with pytest.raises(effect.EffectError) as err:
        effect.validate(spec)
    assert str(err.value) == message
