"""Module argument handling, check mode and diff, with the fake runner in place of the binaries."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from test_pm2_process import jlist, proc

from ansible_collections.healthbutler.recovery.plugins.modules import maintenance_mode, pg_cluster, pm2_process


def run_module(module, args, runner, monkeypatch, capsys):
    monkeypatch.setattr(module, "AnsibleRunner", lambda _m: runner)
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_pm2_check_mode_plans_recreate_with_a_diff_and_changes_nothing(fake_runner, monkeypatch, capsys):
    fake_runner.add("jlist", stdout=jlist(proc()))
    out = run_module(pm2_process, {"name": "health-butler", "pm2_bin": "/usr/bin/pm2",
                                   "node_args": "--max-old-space-size=4096", "_ansible_check_mode": True,
                                   "_ansible_diff": True}, fake_runner, monkeypatch, capsys)
    assert out["changed"] is True and out["actions"] == ["recreate"]
    assert out["diff"] == {"before": "node_args: --max-old-space-size=256\n",
                           "after": "node_args: --max-old-space-size=4096\n"}
    assert [c["argv"][1] for c in fake_runner.calls] == ["jlist"]
    assert "s3cr3t" not in json.dumps(out)


def test_pm2_unknown_app_fails_listing_known_apps(fake_runner, monkeypatch, capsys):
    fake_runner.add("jlist", stdout=jlist(proc(name="worker")))
    out = run_module(pm2_process, {"name": "health-butler", "pm2_bin": "/usr/bin/pm2"}, fake_runner, monkeypatch,
                     capsys)
    assert out["failed"] and "health-butler" in out["msg"] and out["known_apps"] == ["worker"]


def test_pm2_missing_env_key_fails_before_any_pm2_call(fake_runner, monkeypatch, capsys, tmp_path):
    env = tmp_path / ".env"
    env.write_text("DATABASE_URL=postgresql://u:pw@h/db\nJWT_SECRET=\n")
    out = run_module(pm2_process, {"name": "health-butler", "pm2_bin": "/usr/bin/pm2", "env_file": str(env),
                                   "required_env_keys": ["DATABASE_URL", "JWT_SECRET"], "state": "restarted"},
                     fake_runner, monkeypatch, capsys)
    assert out["failed"] and "JWT_SECRET" in out["msg"] and fake_runner.calls == []
    assert out["env_keys"] == {"DATABASE_URL": "set", "JWT_SECRET": "empty"} and "pw@" not in json.dumps(out)


def test_pg_cluster_check_mode_on_a_stopped_server(fake_runner, monkeypatch, capsys):
    monkeypatch.setattr(pg_cluster, "pid1_is_systemd", lambda: False)
    fake_runner.add("pg_lsclusters", rc=0, stdout="")
    fake_runner.add("pg_ctl -D /srv/pg status", rc=3, stdout="pg_ctl: no server running")
    out = run_module(pg_cluster, {"data_dir": "/srv/pg", "_ansible_check_mode": True}, fake_runner, monkeypatch,
                     capsys)
    assert out["changed"] is True and out["actions"] == ["start"] and out["method"] == "pg_ctl"
    assert not any(c["argv"][-1] == "start" for c in fake_runner.calls)


def test_maintenance_check_mode_and_diff(tmp_path, monkeypatch, capsys):
    flag = tmp_path / "maintenance.flag"
    with patch_module_args({"state": "on", "path": str(flag), "_ansible_check_mode": True, "_ansible_diff": True}), \
            pytest.raises(SystemExit):
        maintenance_mode.main()
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] and out["diff"]["after"] == "on\n" and not flag.exists()


@pytest.mark.parametrize("names", [("pg_bindir", "pg_port", "pg_socket_dir", "pg_os_user"),
                                   ("bindir", "port", "socket_dir", "os_user")], ids=["names", "aliases"])
def test_pg_cluster_takes_the_shared_postgres_names_and_the_old_ones(fake_runner, monkeypatch, capsys, names):
    monkeypatch.setattr(pg_cluster, "pid1_is_systemd", lambda: False)
    fake_runner.add("pg_lsclusters", rc=0, stdout="")
    fake_runner.add("/opt/pg/bin/pg_ctl -D /srv/pg status", rc=3, stdout="pg_ctl: no server running")
    args = dict(zip(names, ("/opt/pg/bin", 55432, "/srv/run", "pgowner")), data_dir="/srv/pg", _ansible_check_mode=True)
    out = run_module(pg_cluster, args, fake_runner, monkeypatch, capsys)
    assert out["changed"] is True and out["actions"] == ["start"], out
    assert any("/opt/pg/bin/pg_ctl -D /srv/pg status" in " ".join(c["argv"]) for c in fake_runner.calls)
