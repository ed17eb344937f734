"""redis_control: validation, scoped plans, snapshot before clear, batching, REDISCLI_AUTH."""

import pathlib

import pytest
from fakes import sequence

from ansible_collections.healthbutler.recovery.plugins.module_utils import redis_control as rc

PERSIST_IDLE = "# Persistence\r\nrdb_bgsave_in_progress:0\r\nrdb_saves:4\r\nrdb_last_bgsave_status:ok\r\n"
PERSIST_DONE = "# Persistence\r\nrdb_bgsave_in_progress:0\r\nrdb_saves:5\r\nrdb_last_bgsave_status:ok\r\n"
KEYSPACE = "# Keyspace\r\ndb0:keys=5,expires=0,avg_ttl=0\r\ndb2:keys=7,expires=1,avg_ttl=10\r\n"


def redis(runner):
    return rc.Redis(runner, "redis-cli", "127.0.0.1", 6380, "pw-xyz", sleep=lambda s: None, clock=lambda: 0)


@pytest.mark.parametrize("scope,pattern,confirm,message", [
    ("pattern", None, False, "needs a pattern"),
    ("pattern", "*", False, "narrower"),
    ("pattern", "**", False, "narrower"),
    ("all", None, False, "confirm_flushall=true"),
    ("all", None, None, "confirm_flushall=true"),
    ("everything", None, False, "scope must be one of"),
])
def test_bad_inputs_are_refused_before_anything_runs(scope, pattern, confirm, message):
    with pytest.raises(rc.RedisError, match=message):
        rc.validate(scope, pattern, confirm)


def test_valid_inputs():
    rc.validate("pattern", "cache:*", False)
    rc.validate("db", None, False)
    rc.validate("all", None, True)


def test_scan_follows_the_cursor_and_passes_the_password_by_env(fake_runner):
    fake_runner.add("SCAN 0 MATCH cache:\\* COUNT 2", stdout="17\ncache:a\ncache:b\n")
    fake_runner.add("SCAN 17 MATCH", stdout="0\ncache:c\ncache:a\n")
    keys = redis(fake_runner).scan("cache:*", 3, count=2)
    assert keys == ["cache:a", "cache:b", "cache:c"]
    for call in fake_runner.calls:
        assert call["env"] == {"REDISCLI_AUTH": "pw-xyz"}
        assert "pw-xyz" not in call["argv"]
        assert call["argv"][call["argv"].index("-n") + 1] == "3"


def test_pattern_clear_unlinks_in_batches_and_counts(fake_runner):
    fake_runner.add("SCAN", stdout="0\n" + "\n".join("cache:%d" % i for i in range(5)))
    fake_runner.add("UNLINK", stdout=lambda argv, data: str(len(argv) - argv.index("UNLINK") - 1))
    r = redis(fake_runner)
    planned = rc.plan_clear(r, "pattern", 0, "cache:*")
    assert planned["keys"] == 5
    assert rc.clear(r, "pattern", 0, planned, batch_size=2) == 5
    unlinks = [c["argv"][c["argv"].index("UNLINK") + 1:] for c in fake_runner.calls if "UNLINK" in c["argv"]]
    assert [len(u) for u in unlinks] == [2, 2, 1]
    assert not any("FLUSH" in " ".join(c["argv"]) for c in fake_runner.calls)


def test_db_scope_flushes_one_db_only(fake_runner):
    fake_runner.add("INFO keyspace", stdout=KEYSPACE).add("FLUSHDB", stdout="OK")
    r = redis(fake_runner)
    planned = rc.plan_clear(r, "db", 2, None)
    assert planned["keys"] == 7
    assert rc.clear(r, "db", 2, planned) == 7
    flush = [c["argv"] for c in fake_runner.calls if "FLUSHDB" in c["argv"]][0]
    assert flush[flush.index("-n") + 1] == "2"


def test_all_scope_counts_every_db(fake_runner):
    fake_runner.add("INFO keyspace", stdout=KEYSPACE).add("FLUSHALL", stdout="OK")
    r = redis(fake_runner)
    planned = rc.plan_clear(r, "all", 0, None)
    assert planned == {"keys": 12, "by_db": {"db0": 5, "db2": 7}}
    assert rc.clear(r, "all", 0, planned) == 12


def test_snapshot_waits_for_bgsave_and_copies_the_rdb(fake_runner, tmp_path):
    rdb = tmp_path / "dump.rdb"
    rdb.write_bytes(b"REDIS0011-fake")
    fake_runner.add("INFO persistence", stdout=sequence([PERSIST_IDLE,
                                                         PERSIST_IDLE.replace("in_progress:0", "in_progress:1"),
                                                         PERSIST_DONE]))
    fake_runner.add("BGSAVE", stdout="Background saving started")
    fake_runner.add("CONFIG GET dir", stdout="dir\n%s" % tmp_path).add("CONFIG GET dbfilename", stdout="dbfilename\n"
                                                                       "dump.rdb")
    snap = redis(fake_runner).snapshot(str(tmp_path / "aside"), stamp="T1")
    assert snap["source"] == str(rdb)
    assert pathlib.Path(snap["path"]).read_bytes() == b"REDIS0011-fake"
    assert snap["path"].endswith("redis-6380-T1.rdb")


def test_failed_bgsave_stops_before_any_removal(fake_runner, tmp_path):
    fake_runner.add("INFO persistence", stdout=sequence([PERSIST_IDLE, PERSIST_DONE.replace(":ok", ":err")]))
    fake_runner.add("BGSAVE", stdout="Background saving started")
    with pytest.raises(rc.RedisError, match="BGSAVE failed"):
        redis(fake_runner).snapshot(str(tmp_path))


def test_bgsave_already_running_is_waited_for(fake_runner, tmp_path):
    (tmp_path / "dump.rdb").write_bytes(b"x")
    fake_runner.add("INFO persistence", stdout=sequence([PERSIST_IDLE, PERSIST_DONE]))
    fake_runner.add("BGSAVE", stdout=sequence(["ERR Background save already in progress",
                                               "Background saving started"]))
    fake_runner.add("CONFIG GET dir", stdout="dir\n%s" % tmp_path).add("CONFIG GET dbfilename",
                                                                       stdout="dbfilename\ndump.rdb")
    assert redis(fake_runner).snapshot(str(tmp_path / "a"))["size"] == 1


@pytest.mark.parametrize("reply", ["NOAUTH Authentication required.", "WRONGPASS invalid username-password pair",
                                   "ERR unknown command"])
def test_error_replies_with_rc_0_are_failures(fake_runner, reply):
    fake_runner.add("INFO", stdout=reply)
    with pytest.raises(Exception, match=reply.split()[0]):
        redis(fake_runner).info("keyspace")
