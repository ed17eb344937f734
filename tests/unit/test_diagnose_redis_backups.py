"""Redis and backups collectors."""

import os

from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_backups as backups
from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_redis as redis

INFO = """# Server
redis_version:7.0.15
# Memory
used_memory:125000000
maxmemory:134217728
maxmemory_policy:allkeys-lru
# Persistence
rdb_changes_since_last_save:12
rdb_last_save_time:1000
rdb_last_bgsave_status:err
# Stats
evicted_keys:42
# Replication
role:master
"""


def test_info_summary():
    out = redis.summarize_info(redis.parse_info(INFO), now=1600)
    assert out["memory_used_percent"] == 93.1 and out["evicted_keys"] == 42
    assert out["rdb_last_bgsave_status"] == "err" and out["rdb_last_save_age_s"] == 600
    assert redis.summarize_info({"used_memory": 5, "maxmemory": 0})["memory_used_percent"] is None


def test_collect_passes_the_password_in_env_only(fake_runner):
    fake_runner.add(r"PING", 0, "PONG\n").add(r"INFO", 0, INFO)
    out = redis.collect(fake_runner, "redis-cli", "127.0.0.1", 6380, "s3cret-redis")
    assert out["ok"] and out["ping"] and out["version"] == "7.0.15"
    assert all("s3cret-redis" not in " ".join(c["argv"]) for c in fake_runner.calls)
    assert fake_runner.calls[0]["env"] == {"REDISCLI_AUTH": "s3cret-redis"}


def test_collect_of_a_down_redis(fake_runner):
    fake_runner.add(r"PING", 1, "", "Could not connect to Redis at 127.0.0.1:6380: Connection refused")
    out = redis.collect(fake_runner, port=6380)
    assert out["ping"] is False and "Connection refused" in out["errors"][0]
    assert len(fake_runner.calls) == 1


def test_newest_backup_ignores_partials_and_sidecars(tmp_path):
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    for name, mtime in [("hb_1.dump", 1000), ("hb_2.dump", 2000), ("hb_2.dump.sha256", 3000),
                        ("hb_3.dump.partial", 4000)]:
        (dumps / name).write_text("x")
        os.utime(dumps / name, (mtime, mtime))
    out = backups.newest_backup(str(tmp_path), now=5600)
    assert out["files"] == 2 and out["newest"]["name"] == "hb_2.dump" and out["newest"]["age_s"] == 3600


def test_newest_wal_segment(tmp_path):
    for name, mtime in [("000000010000000000000001", 100), ("000000010000000000000002", 200),
                        ("000000010000000000000002.00000028.backup", 300), ("00000002.history", 400)]:
        (tmp_path / name).write_text("x")
        os.utime(tmp_path / name, (mtime, mtime))
    out = backups.newest_wal(str(tmp_path), now=260)
    assert out["segments"] == 2 and out["newest"]["name"] == "000000010000000000000002"
    assert out["newest"]["age_s"] == 60


def test_collect_reports_missing_dirs(tmp_path):
    out = backups.collect(str(tmp_path / "none"), str(tmp_path / "nowal"))
    assert out["ok"] is False and out["backup"]["newest"] is None and out["wal"]["exists"] is False


def test_backups_section_uses_the_catalogue(tmp_path):
    """Base backups and bundles count as backups; the window comes with the section."""
    import sys
    sys.path.insert(0, os.path.dirname(__file__))
    from backup_fixtures import T0, make_base, make_dump, make_wal

    root, wal = str(tmp_path / "b"), str(tmp_path / "w")
    make_dump(root, T0)
    make_base(root, T0.replace(hour=4), 2)
    make_wal(wal, 1, [2, 3], T0.replace(hour=4))
    out = backups.collect(root, wal, now=T0.replace(hour=5).timestamp())
    assert out["ok"] and out["backup"]["files"] == 2
    assert out["backup"]["newest"]["kind"] == "base" and out["backup"]["newest"]["age_s"] == 3600
    assert out["catalog"]["window"]["recoverable"] is True
    assert out["catalog"]["kinds"]["dump"]["age_hours"] == 2.0
