"""One production guard for every playbook that changes or restarts anything.

The sandbox itself is put in a `production` group (an inventory beside the sandbox one, same site model):
every such playbook must print its plan, refuse without `-e confirm=<the db host>`, and change nothing.
"""

from __future__ import annotations

import os

import pytest
from harness import ROOT, run_playbook
from rollback_helpers import head

# playbook, extra vars that make it want to change something
DESTRUCTIVE = [
    ("restart-app.yml", {"app_restart_force": True}),
    ("recover-db-connection.yml", {}),
    ("recover-memory.yml", {}),
    ("triage-performance.yml", {"performance_triage_resolve": "terminate"}),
    ("maintenance.yml", {"maintenance_state": "on"}),
    ("recover-db.yml", {"recover_mode": "dump"}),
    ("rollback.yml", {}),
    ("restore-files.yml", {}),
    ("backup.yml", {"backup_mode": "retention"}),
    ("cleanup-preserved.yml", {"older_than_days": 0}),
]


@pytest.fixture(scope="module")
def production(sandbox, tmp_path_factory):
    """An inventory where the sandbox's host is also in the production group (and a backup to plan from)."""
    backup = run_playbook("backup.yml")
    assert backup.rc == 0, backup.stdout[-3000:]
    inv = tmp_path_factory.mktemp("production-sandbox")
    with open(os.path.join(ROOT, "inventories", "sandbox", "hosts.yml"), encoding="utf-8") as fh:
        hosts = fh.read()
    assert "\n  vars:\n" in hosts
    (inv / "hosts.yml").write_text(hosts.replace("\n  vars:\n", "\n    production:\n      hosts:\n        localhost:\n"
                                                 "  vars:\n", 1))
    os.symlink(os.path.join(ROOT, "inventories", "sandbox", "group_vars"), inv / "group_vars")
    return str(inv)


def state(sandbox):
    return {"pm2_pid": sandbox.pm2_process()["pid"], "pg_pid": sandbox.pg_pid(), "release": head(sandbox),
            "maintenance": os.path.exists(sandbox["hb_app_maintenance_flag"]),
            "rows": sandbox.psql("SELECT count(*) FROM health_data"), "health": sandbox.is_healthy()}


def refusal(run_result):
    """The guard's message, from its task result (the console wraps long lines)."""
    return " ".join(str(r.get("msg", "")) for r in run_result.task_results("Refuse the production group"))


def run(production, playbook, extravars, **kw):
    return run_playbook(playbook, dict(extravars, hb_repo_root=ROOT), inventory=production, **kw)


@pytest.mark.parametrize("playbook, extravars", DESTRUCTIVE, ids=[p for p, _extravars in DESTRUCTIVE])
def test_production_is_refused_without_confirm_and_nothing_changes(sandbox, production, playbook, extravars):
    sandbox.ensure_healthy()
    before = state(sandbox)
    refused = run(production, playbook, extravars)
    assert refused.rc != 0, refused.stdout[-3000:]
    message = refusal(refused)
    assert "refused: localhost is in the production group and no confirm was given. Nothing was changed." \
        in message, refused.stdout[-3000:]
    assert "re-run with -e confirm=localhost (the db host's inventory name)" in message
    plan = [r["msg"] for r in refused.task_results("Print the plan") if " will " in str(r.get("msg"))]
    assert plan and "(production: localhost)" in plan[0], plan
    assert state(sandbox) == before
    wrong = run(production, playbook, dict(extravars, confirm="production-db-9"))
    assert wrong.rc != 0 and "confirm=production-db-9 is not the db host" in refusal(wrong)
    assert state(sandbox) == before


def test_confirm_lets_the_run_through(sandbox, production):
    sandbox.ensure_healthy()
    on = run(production, "maintenance.yml", {"maintenance_state": "on", "confirm": "localhost"})
    try:
        assert on.rc == 0, on.stdout[-3000:]
        assert sandbox.http("/health")[0] == 503
    finally:
        off = run(production, "maintenance.yml", {"maintenance_state": "off", "confirm": "localhost"})
    assert off.rc == 0 and sandbox.is_healthy()


def test_check_mode_and_read_only_runs_are_not_refused(sandbox, production):
    sandbox.ensure_healthy()
    before = state(sandbox)
    checked = run(production, "restart-app.yml", {"app_restart_force": True}, check=True)
    assert checked.rc == 0, checked.stdout[-3000:]
    assert "[check mode: nothing changes]" in checked.task_results("Print the plan")[0]["msg"]
    report_only = run(production, "triage-performance.yml", {})
    assert report_only.rc == 0, report_only.stdout[-3000:]
    assert not report_only.task_results("Print the plan")
    assert state(sandbox) == before


def test_drill_keeps_its_own_refusal(sandbox, production, tmp_path):
    run_dir = str(tmp_path / "drill")
    refused = run(production, "drill.yml", {"drill_scenarios": ["app_crash"], "drill_run_dir": run_dir,
                                            "confirm": "localhost"}, envvars={"HB_RUN_DIR": run_dir})
    assert refused.rc != 0 and "drill refused" in refused.stdout
    assert not os.path.exists(os.path.join(run_dir, "app_crash"))
