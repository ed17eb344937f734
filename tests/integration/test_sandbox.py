"""The sandbox itself: real services, idempotent, observable faults."""

import os
import subprocess

from harness import run_playbook


def test_health_reports_database_and_redis(sandbox):
    status, body = sandbox.http("/health")
    assert status == 200
    assert body["db"] == "ok" and body["redis"] == "ok"


def test_second_present_changes_nothing(sandbox):
    run = run_playbook("sandbox.yml", {"sandbox_state": "present"})
    assert run.rc == 0
    assert run.changed == 0, run.stdout[-3000:]


def test_stopping_postgres_gives_503_naming_the_database(healthy):
    assert healthy.pg_ctl("stop", "-m", "fast").returncode == 0
    try:
        status, body = healthy.wait_health(503, timeout=20)
        assert "database" in body["failed"]
        assert body["redis"] == "ok"
    finally:
        assert healthy.pg_ctl("start", "-l", os.path.join(healthy["hb_pg_log_dir"], "startup.log")).returncode == 0
    healthy.wait_health(200, timeout=30)


def test_seeded_volume_and_archiving(sandbox):
    assert int(sandbox.scalar("SELECT count(*) FROM health_data")) >= 100000
    assert int(sandbox.scalar("SELECT count(*) FROM users")) >= 1000
    assert sandbox.scalar("SHOW archive_mode") == "on"
    assert "pg_stat_statements" in sandbox.scalar("SHOW shared_preload_libraries")
    sandbox.psql("SELECT pg_switch_wal()")
    archive = sandbox["hb_wal_archive_dir"]
    assert any(len(n) == 24 for n in os.listdir(archive))


def test_api_writes_and_reads_rows(sandbox):
    before = int(sandbox.scalar("SELECT count(*) FROM health_data"))
    status, row = sandbox.http("/api/health-data", "POST", {"user_id": 2, "metric": "steps", "value": 1234})
    assert status == 201
    assert int(sandbox.scalar("SELECT count(*) FROM health_data")) == before + 1
    status, rows = sandbox.http("/api/health-data?limit=1")
    assert status == 200 and rows[0]["id"] == row["id"]


def test_redis_requires_its_password(sandbox):
    assert sandbox.redis("PING") == "PONG"


def test_app_repository_has_release_tags(sandbox):
    tags = subprocess.run(["git", "-C", sandbox["hb_app_dir"], "tag", "--list"], capture_output=True,
                          text=True, check=True).stdout.split()
    assert {"v1.0.0", "v1.1.0"} <= set(tags)
    clean = subprocess.run(["git", "-C", sandbox["hb_app_dir"], "status", "--porcelain"],
                           capture_output=True, text=True, check=True).stdout
    assert clean == ""


def test_pm2_runs_the_app_with_its_own_home(sandbox):
    proc = sandbox.pm2_process()
    assert proc["pm2_env"]["status"] == "online"
    assert os.path.exists(os.path.join(sandbox["hb_pm2_home"], "pm2.pid"))


def test_status_prints_one_line_per_component(sandbox):
    run = run_playbook("sandbox.yml", {"sandbox_state": "status"})
    lines = run.task_results("Probe each component")[0]["stdout_lines"]
    assert [line.split(":")[0] for line in lines] == [
        "postgresql", "redis", "pm2 health-butler", "app http", "wal archive"]
    assert "up" in lines[0] and "up" in lines[1] and "online" in lines[2] and "HTTP 200" in lines[3]


def test_setup_leaves_no_password_in_pg_stat_statements(sandbox):
    for name in ("db_app", "db_monitor"):
        secret = sandbox.credential(name)
        found = sandbox.scalar("SELECT count(*) FROM pg_stat_statements WHERE position('%s' IN query) > 0" % secret)
        assert found == "0", "password of %s is readable in pg_stat_statements" % name
