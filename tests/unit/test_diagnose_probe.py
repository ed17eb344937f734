"""User probes from the app host: the app's DB user (read, rolled-back write), Redis URL, port holders, .env."""

import os

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_probe as probe

URL = "postgresql://health_butler:S3cretPw4242@127.0.0.1:55432/health_butler"


def test_db_probe_reads_then_writes_in_a_rolled_back_transaction(fake_runner):
    fake_runner.add(r"(?s)psql.*BEGIN", 0, "")
    fake_runner.add(r"psql", 0, '{"rows": 1, "transaction_read_only": "off", "in_recovery": false}\n')
    out = probe.db_user_probe(fake_runner, "/usr/bin/psql", URL)
    assert out["target"] == "127.0.0.1:55432" and out["user"] == "health_butler"
    assert out["read"]["ok"] and out["read"]["rows"] == 1 and out["write"] == {
        "ok": True, "rolled_back": True, "time_s": out["write"]["time_s"]}
    read, write = fake_runner.calls
    for call in (read, write):
        assert "S3cretPw4242" not in " ".join(call["argv"]) and call["env"]["PGPASSWORD"] == "S3cretPw4242"
        assert call["argv"][:7] == ["/usr/bin/psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"]
        assert "SET lock_timeout = 2000" in call["data"]
    assert write["data"].index("BEGIN;") < write["data"].index("INSERT INTO health_data") < write["data"].index(
        "ROLLBACK;")
    assert "S3cretPw4242" not in repr(out)


@pytest.mark.parametrize("stderr,reason", [
    ('psql: error: connection to server at "127.0.0.1", port 55432 failed: FATAL:  password authentication '
     'failed for user "health_butler"', "authentication"),
    ('psql: error: could not translate host name "db.invalid" to address: Name or service not known',
     "name_not_found"),
    ('psql: error: connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running',
     "refused"),
    ("psql: error: connection to server at \"10.0.0.9\", port 5432 failed: timeout expired", "timeout"),
    ("psql: could not connect to server: No route to host\n\tIs the server running on host \"10.212.12.21\"",
     "unreachable"),
    ('psql: error: connection to server at "10.212.12.21", port 5432 failed: Network is unreachable', "unreachable"),
    ("connect EHOSTUNREACH 10.212.12.21:5432", "unreachable"),
    ("connect ENETUNREACH 10.212.12.21:5432", "unreachable"),
    ("FATAL:  remaining connection slots are reserved for non-replication superuser connections",
     "too_many_connections"),
    ("FATAL:  sorry, too many clients already", "too_many_connections"),
])
def test_a_failed_connection_is_classified_and_nothing_is_written(fake_runner, stderr, reason):
    fake_runner.add(r"psql", 2, "", stderr)
    out = probe.db_user_probe(fake_runner, "psql", URL)
    assert out["read"]["reason"] == reason and out["read"]["ok"] is False
    assert out["write"] is None and len(fake_runner.calls) == 1


@pytest.mark.parametrize("stderr,reason", [
    ("ERROR:  cannot execute INSERT in a read-only transaction", "read_only"),
    ("ERROR:  cannot execute INSERT in a read-only transaction during recovery", "in_recovery"),
    ('ERROR:  could not extend file "base/16384/16390": No space left on device', "disk_full"),
    ('ERROR:  database is not accepting commands to avoid wraparound data loss in database "health_butler"',
     "wraparound"),
    ("ERROR:  canceling statement due to lock timeout", "lock_timeout"),
])
def test_a_refused_write_is_classified(fake_runner, stderr, reason):
    fake_runner.add(r"(?s)psql.*BEGIN", 3, "", stderr)
    fake_runner.add(r"psql", 0, '{"rows": 1}\n')
    out = probe.db_user_probe(fake_runner, "psql", URL)
    assert out["read"]["ok"] and out["write"]["reason"] == reason


def test_no_write_when_asked_not_to(fake_runner):
    fake_runner.add(r"psql", 0, '{"rows": 1}\n')
    assert probe.db_user_probe(fake_runner, "psql", URL, write=False)["write"] is None
    assert len(fake_runner.calls) == 1


def test_redis_probe_password_in_env_only(fake_runner):
    fake_runner.add(r"redis-cli", 0, "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.\n")
    out = probe.redis_user_probe(fake_runner, "redis-cli", "redis://:R3disSecret99@127.0.0.1:56379/0")
    assert out == {"target": "127.0.0.1:56379", "ok": False, "reason": "authentication",
                   "error": "AUTH failed: WRONGPASS invalid username-password pair or user is disabled."}
    call = fake_runner.calls[0]
    assert "R3disSecret99" not in " ".join(call["argv"]) and call["env"] == {"REDISCLI_AUTH": "R3disSecret99"}


def test_redis_probe_refused(fake_runner):
    fake_runner.add(r"redis-cli", 1, "", "Could not connect to Redis at 127.0.0.1:1: Connection refused")
    assert probe.redis_user_probe(fake_runner, "redis-cli", "redis://127.0.0.1:1")["reason"] == "refused"


SS = ('LISTEN 0      5          127.0.0.1:54000      0.0.0.0:*    users:(("python3",pid=4242,fd=3))\n'
      'LISTEN 0      511        127.0.0.1:540000     0.0.0.0:*    users:(("node",pid=1,fd=3))\n')


def test_port_holders_from_ss(fake_runner, tmp_path):
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "cmdline").write_bytes(b"python3\0-m\0http.server\0--token=abcdefgh123\0")
    fake_runner.add(r"^ss ", 0, SS)
    out = probe.port_holders(fake_runner, 54000, proc_root=str(tmp_path))
    assert out["holders"] == [{"address": "127.0.0.1:54000", "pid": 4242, "command": "python3",
                               "cmdline": "python3 -m http.server --token=********"}]
    assert fake_runner.calls[0]["argv"] == ["ss", "-H", "-l", "-t", "-n", "-p", "sport = :54000"]


def test_port_holder_unknown_without_privileges():
    assert probe.parse_ss("LISTEN 0 5 127.0.0.1:54000 0.0.0.0:*\n", 54000) == [
        {"address": "127.0.0.1:54000", "pid": None, "command": None}]


def test_env_vs_newest_file_backup_names_keys_and_url_parts_never_values(tmp_path):
    env = tmp_path / ".env"
    env.write_text("PORT=54000\nDATABASE_URL=postgresql://hb:NewWrong1@127.0.0.1:5432/hb\nJWT_SECRET=abc\n"
                   "EXTRA=1\n")
    root = tmp_path / "files"
    for stamp, url in (("20261130T030000Z", "postgresql://hb:Old0@127.0.0.1:5432/hb"),
                       ("20261201T030000Z", "postgresql://hb:Right99@127.0.0.1:5432/hb")):
        (root / stamp).mkdir(parents=True)
        (root / stamp / "env").write_text("PORT=54000\nDATABASE_URL=%s\nJWT_SECRET=abc\nREDIS_URL=redis://x\n" % url)
    (root / ".20261202T030000Z.partial").mkdir()
    os.utime(env, (1764633600, 1764633600))
    out = probe.env_vs_backup(str(env), str(root))
    assert out["backup"] == "20261201T030000Z" and out["mtime"] == "2025-12-02T00:00:00Z"
    assert out["changed"] == [{"key": "DATABASE_URL", "parts": ["password"]}]
    assert (out["added"], out["removed"], out["differ"]) == (["REDIS_URL"], ["EXTRA"], True)
    assert "NewWrong1" not in repr(out) and "Right99" not in repr(out)


def test_env_without_backup_says_so(tmp_path):
    env = tmp_path / ".env"
    env.write_text("A=1\n")
    out = probe.env_vs_backup(str(env), str(tmp_path / "none"))
    assert out["differ"] is False and out["error"].startswith("no file backup under")


@pytest.mark.parametrize("old,new,parts", [
    ("postgresql://a:x@h:1/d", "postgresql://a:y@h:1/d", ["password"]),
    ("postgresql://a:x@h:1/d", "postgresql://a:x@other:1/d", ["host"]),
    ("redis://:x@h:6379/0", "redis://:x@h:6380/0", ["port"]),
    ("5", "6", None),
])
def test_url_parts_changed(old, new, parts):
    assert probe.url_parts_changed(old, new) == parts


def test_p95_nearest_rank_and_latency_budget():
    assert probe.percentile([0.1, 0.2, 0.3, 0.4, 3.0], 95) == 3.0
    assert probe.percentile([], 95) is None
    calls = []

    def slow(url):
        calls.append(url)
        return {"status": 200, "time_total_s": 4.0}
    out = probe.latency(slow, "http://x/health", samples=5, budget_s=10.0, first={"status": 200, "time_total_s": 4.0})
    assert out["samples"] == 3 and len(calls) == 2 and out["p95_s"] == 4.0  # stopped when 10 s were spent


def test_missing_psql_or_redis_cli_skips_those_probes_and_says_so(fake_runner, tmp_path):
    from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_app

    env = tmp_path / ".env"
    env.write_text("DATABASE_URL=%s\nREDIS_URL=redis://:x@127.0.0.1:6379/0\n" % URL)
    out = diagnose_app.user_probes(fake_runner, str(env), None, psql_bin=None, redis_cli=None)
    assert out["db"] is None and out["redis"] is None and fake_runner.calls == []
    assert out["error"] == "not found on this host: psql, redis-cli (those probes are skipped)"


def test_redis_probe_no_route_is_unreachable(fake_runner):
    fake_runner.add(r"redis-cli", 1, "", "Could not connect to Redis at 10.212.12.31:6379: No route to host")
    assert probe.redis_user_probe(fake_runner, "redis-cli", "redis://10.212.12.31:6379")["reason"] == "unreachable"
