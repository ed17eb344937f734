"""The staging fleet's hosts are really apart: own files, own loopback, own services, SSH + sudo."""

from __future__ import annotations

import copy
import glob
import ipaddress
import os
import uuid

import yaml
from fleet_helpers import staging_play
from harness import ROOT

# What the generated inventory may add to inventories/staging: how this controller reaches the
# local fleet and where the fleet's generated secrets live (a real staging takes them from Vault).
LOCAL_ONLY = {"ansible_ssh_private_key_file", "ansible_host_key_checking", "ansible_ssh_common_args",
              "hb_credentials_dir", "hb_db_app_password", "hb_pg_monitor_user", "hb_pg_monitor_password",
              "hb_redis_password", "hb_pg_replication_password"}


def test_inventory_is_staging_with_other_addresses(fleet):
    with open(os.path.join(ROOT, "inventories", "staging", "hosts.yml"), encoding="utf-8") as fh:
        staging = yaml.safe_load(fh)
    group_vars = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "inventories", "staging", "group_vars", "all", "*.yml"))):
        with open(path, encoding="utf-8") as fh:
            group_vars.update(yaml.safe_load(fh))
    generated = copy.deepcopy(fleet.inventory)
    local = {k: generated["all"]["vars"].pop(k) for k in list(generated["all"]["vars"]) if k in LOCAL_ONLY}
    assert set(local) == LOCAL_ONLY
    assert generated["all"]["vars"] == dict(group_vars, **staging["all"]["vars"])
    net = ipaddress.ip_network("%s.0/24" % (os.environ.get("HB_STAGING_NETWORK") or "10.212.12"))
    for group in ("app", "db", "cache", "backup"):
        theirs = staging["all"]["children"]["staging"]["children"][group]["hosts"]
        ours = generated["all"]["children"]["staging"]["children"][group]["hosts"]
        assert set(ours) == set(theirs)
        for host in theirs:
            mine = ipaddress.ip_address(ours[host]["ansible_host"])
            assert mine in net and mine.packed[-1] == ipaddress.ip_address(theirs[host]["ansible_host"]).packed[-1]
    assert sorted(fleet.groups["app"]) == ["staging-app-1", "staging-app-2"]


def test_a_file_under_var_backups_on_the_db_host_is_absent_on_the_backup_host(fleet):
    name = "apart-%s" % uuid.uuid4().hex
    fleet.ssh("staging-db-1", "echo db > /tmp/%s && sudo -n cp /tmp/%s /var/backups/%s" % (name, name, name))
    try:
        assert fleet.ssh("staging-db-1", "cat /var/backups/%s" % name).stdout.strip() == "db"
        on_backup = fleet.ssh("staging-backup-1", "test -e /var/backups/%s" % name, check=False)
        assert on_backup.returncode == 1
        assert not os.path.exists("/var/backups/%s" % name)  # nor on the controller
        assert fleet.ssh("staging-backup-1", "test -e /tmp/%s" % name, check=False).returncode == 1
    finally:
        fleet.ssh("staging-db-1", "sudo -n rm -f /var/backups/%s /tmp/%s" % (name, name))


def test_each_host_has_its_own_paths_and_services(fleet):
    # The data directory exists on the db host only; the app tree on the app hosts only.
    pg_version = fleet.ssh("staging-db-1", "sudo -n cat /var/lib/postgresql/15/main/PG_VERSION", check=False)
    assert pg_version.stdout.strip() == "15"
    for host in ("staging-app-1", "staging-cache-1", "staging-backup-1"):
        assert fleet.ssh(host, "test -e /var/lib/postgresql/15/main", check=False).returncode == 1, host
    assert fleet.ssh("staging-db-1", "test -e /app/.git", check=False).returncode == 1
    for host in fleet.groups["app"]:
        assert fleet.ssh(host, "git -C /app describe --tags").stdout.strip() == "v1.1.0"
    # Each PM2 knows only its own host's app.
    pm2 = "PM2_HOME=%s %s pid health-butler" % (fleet.vars["hb_pm2_home"], fleet.vars["hb_pm2_bin"])
    pids = {host: fleet.ssh(host, pm2).stdout.split()[-1] for host in fleet.groups["app"]}
    assert len(set(pids.values())) == 2 and "0" not in pids.values()


def test_postgresql_is_not_on_an_app_hosts_loopback_but_on_the_db_hosts_address(fleet):
    psql = ("read -r PGPASSWORD; export PGPASSWORD; /usr/lib/postgresql/15/bin/psql -X -A -t -w "
            "-h %s -p 5432 -U health_butler -d health_butler -c 'SELECT count(*) > 0 FROM users'")
    password = fleet.credential("db_app") + "\n"
    local = fleet.ssh("staging-app-1", psql % "127.0.0.1", stdin=password, check=False)
    assert local.returncode != 0
    assert "Connection refused" in local.stderr
    remote = fleet.ssh("staging-app-1", psql % fleet.address("staging-db-1"), stdin=password, check=False)
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout.strip() == "t"
    wrong = fleet.ssh("staging-app-1", psql % fleet.address("staging-db-1"), stdin="not-the-password\n", check=False)
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr


def test_redis_answers_on_the_cache_host_only(fleet):
    ping = "read -r REDISCLI_AUTH; export REDISCLI_AUTH; redis-cli -h %s -p 6379 ping"
    password = fleet.credential("redis") + "\n"
    assert fleet.ssh("staging-app-1", ping % fleet.address("staging-cache-1"), stdin=password).stdout.strip() == "PONG"
    local = fleet.ssh("staging-app-1", ping % "127.0.0.1", stdin=password, check=False)
    assert "PONG" not in local.stdout


def test_deploy_logs_in_with_its_key_and_becomes_root_through_sudo(fleet):
    for host in fleet.hosts:
        out = fleet.ssh(host, "id -un; sudo -n id -u").stdout.split()
        assert out == ["deploy", "0"], host


def test_each_app_host_serves_health_from_the_controller_and_shares_the_database(fleet):
    for host in fleet.groups["app"]:
        status, body = fleet.http(host, "/health")
        assert status == 200, (host, body)
    status, row = fleet.http("staging-app-1", "/api/health-data", "POST", {"metric": "steps", "value": 4321})
    assert status == 201, row
    status, rows = fleet.http("staging-app-2", "/api/health-data?limit=50")
    assert status == 200 and row["id"] in [r["id"] for r in rows]


def test_staging_present_again_changes_nothing(fleet):
    again = staging_play("present")
    assert again.rc == 0, again.stdout[-3000:]
    assert again.changed == 0, {h: n for h, n in (again.stats.get("changed") or {}).items() if n}
