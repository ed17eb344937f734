"""A production inventory of separate hosts still refuses destructive runs without confirm=<db host>."""

from __future__ import annotations

import os

import pytest
import yaml
from fleet_helpers import STAGING_DIR, run_playbook

# The runbook's production layout (inventories/production: one app host), on the fleet's hosts.
PRODUCTION = {"production-app-1": ("app", "staging-app-1"), "production-db-1": ("db", "staging-db-1"),
              "production-cache-1": ("cache", "staging-cache-1"), "production-backup-1": ("backup", "staging-backup-1")}


@pytest.fixture(scope="module")
def production(fleet):
    """An inventory with a `production` group and hb_environment=production, whose hosts are the fleet's."""
    children = {}
    for name, (group, host) in PRODUCTION.items():
        children.setdefault(group, {"hosts": {}})["hosts"][name] = {"ansible_host": fleet.address(host)}
    inventory = {"all": {"children": {"production": {"children": children}},
                         "vars": dict(fleet.vars, hb_environment="production")}}
    path = os.path.join(STAGING_DIR, "production-inventory.yml")
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(inventory, fh)
    yield path
    os.unlink(path)


def app_state(fleet):
    pm2 = "PM2_HOME=%s %s pid health-butler" % (fleet.vars["hb_pm2_home"], fleet.vars["hb_pm2_bin"])
    return {"release": fleet.ssh("staging-app-1", "git -C /app describe --tags").stdout.strip(),
            "pid": fleet.ssh("staging-app-1", pm2).stdout.split()[-1],
            "uploads": fleet.ssh("staging-app-1", "find /app/uploads -type f | sort | xargs md5sum").stdout}


@pytest.mark.parametrize("playbook, extravars, refusal", [
    ("rollback.yml", {}, "no confirm was given. Nothing was changed."),
    ("restore-files.yml", {}, "no confirm was given. Nothing was changed."),
    ("recover-memory.yml", {}, "no confirm was given. Nothing was changed."),
    ("recover-memory.yml", {"confirm": "production-app-1"}, "confirm=production-app-1 is not the db host."),
])
def test_destructive_playbook_refuses_without_confirm(fleet, production, playbook, extravars, refusal):
    before = app_state(fleet)
    run = run_playbook(playbook, extravars, inventory=production, envvars={"HB_STAGING_DIR": STAGING_DIR})
    assert run.rc != 0
    message = " ".join(str(r.get("msg", "")) for r in run.task_results("Refuse the production group"))
    assert "refused: production-app-1 is in the production group" in message, run.stdout[-3000:]
    assert refusal in message and "re-run with -e confirm=production-db-1 (the db host's inventory name)" in message
    assert run.changed == 0, [e["event_data"]["task"] for e in run.events
                              if e.get("event") == "runner_on_ok" and e["event_data"]["res"].get("changed")]
    assert app_state(fleet) == before
    status, _body = fleet.http("staging-app-1")
    assert status == 200


def test_recover_db_refuses_without_confirm_and_fetches_nothing(fleet, production):
    keys = "sudo -n ls -a /var/lib/postgresql/.ssh 2>/dev/null; sudo -n ls -R /var/backups"
    before = fleet.ssh("staging-db-1", keys, check=False).stdout
    run = run_playbook("recover-db.yml", {"recover_mode": "dump"}, inventory=production,
                       envvars={"HB_STAGING_DIR": STAGING_DIR})
    assert run.rc != 0
    message = " ".join(str(r.get("msg", "")) for r in run.task_results("Refuse the production group"))
    assert "refused: production-db-1 is in the production group" in message, run.stdout[-3000:]
    assert "Nothing was changed." in message
    assert run.changed == 0 and not run.task_results("Pull from")
    assert fleet.ssh("staging-db-1", keys, check=False).stdout == before
    for host in fleet.groups["app"]:
        assert fleet.http(host)[0] == 200
