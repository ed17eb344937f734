"""Verify the converged sandbox: every component answers for real."""

import json
import os

import pytest

ROOT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())


def _site(host):
    """Site-model values as the sandbox inventory resolves them for this host."""
    names = ["hb_pg_bindir", "hb_pg_socket_dir", "hb_pg_port", "hb_db_name", "hb_redis_port",
             "hb_pm2_bin", "hb_pm2_home", "hb_app_name", "hb_app_health_url", "hb_sandbox_dir"]
    args = json.dumps({"msg": "{{ [%s] | to_json }}" % ", ".join(names)})
    out = host.ansible("debug", args, check=False)["msg"]
    values = json.loads(out) if isinstance(out, str) else out
    return {name: str(value) for name, value in zip(names, values)}


@pytest.fixture(scope="module")
def site(host):
    return _site(host)


def test_postgres_answers_a_query(host, site):
    cmd = host.run("su -s /bin/sh postgres -c \"%s/psql -X -A -t -h %s -p %s -d %s -c 'SELECT count(*) FROM users'\"",
                   site["hb_pg_bindir"], site["hb_pg_socket_dir"], site["hb_pg_port"], site["hb_db_name"])
    assert cmd.rc == 0, cmd.stderr
    assert int(cmd.stdout.strip()) > 0


def test_redis_answers_ping(host, site):
    password = host.file(os.path.join(site["hb_sandbox_dir"], "credentials", "redis")).content_string.split()[0]
    cmd = host.run("REDISCLI_AUTH=%s redis-cli -p %s ping", password, site["hb_redis_port"])
    assert cmd.stdout.strip() == "PONG"


def test_pm2_shows_the_app_online(host, site):
    cmd = host.run("PM2_HOME=%s %s jlist", site["hb_pm2_home"], site["hb_pm2_bin"])
    procs = json.loads(cmd.stdout[cmd.stdout.index("["):])
    app = next(p for p in procs if p["name"] == site["hb_app_name"])
    assert app["pm2_env"]["status"] == "online"


def test_health_returns_200(host, site):
    cmd = host.run("curl -s -o /dev/null -w '%%{http_code}' %s", site["hb_app_health_url"])
    assert cmd.stdout == "200"
