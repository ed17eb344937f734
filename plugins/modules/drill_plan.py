#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_plan
short_description: Refuse production, choose the drill scenarios and say which can run
description:
  - Fails when the inventory has a C(production) group with any host, when any target host is in it, or when
    the site says C(hb_environment=production). There is no override; nothing has been injected yet.
  - Chooses the scenarios from the catalogue (all by default) and marks those whose recovery or preparation
    playbook is missing as unavailable (C(unavailable - <playbook> missing)); those are never reported as passed.
  - Marks the network scenarios unavailable where the db host is not a separate machine (the sandbox).
  - Returns the app's endpoints (one URL per app host), the app hosts a fault may touch (the blast radius) and,
    for faults scoped to the app, the C(--limit) of the recovery (every host but the spared app hosts).
  - Creates the drill's run directory.
version_added: "1.0.0"
author:
  - Health Butler SRE (@healthbutler)
options:
  scenarios:
    description: Scenario names; empty means the whole catalogue, in its order.
    type: list
    elements: str
    default: []
  overrides:
    description: Per scenario, catalogue keys to replace (for example another recovery playbook).
    type: dict
    default: {}
  groups:
    description: The inventory's groups (the C(groups) magic variable).
    type: dict
    required: true
  target_hosts:
    description: The hosts the drill would touch.
    type: list
    elements: str
    default: []
  environment:
    description: The site's C(hb_environment).
    type: str
    default: ""
  addresses:
    description: Per app and db host, the address the controller reaches it at; empty for a local connection.
    type: dict
    default: {}
  local_url:
    description: Base URL of the app on a local host (the sandbox).
    type: str
    default: http://127.0.0.1:3000
  app_port:
    description: The app's port on an app host of a fleet.
    type: int
    default: 3000
  max_app_hosts:
    description: Blast radius, the app hosts a fault scoped to the app touches at once.
    type: int
    default: 1
  playbook_dir:
    description: Where the recovery playbooks live.
    type: path
    required: true
  run_dir:
    description: The drill's run directory (created).
    type: path
    required: true
notes:
  - Check mode creates nothing and returns the same plan.
"""

EXAMPLES = r"""
- name: Plan the drill
  healthbutler.recovery.drill_plan:
    scenarios: [app_crash, db_down]
    groups: "{{ groups }}"
    environment: "{{ hb_environment }}"
    addresses: {staging-app-1: 10.20.0.11, staging-app-2: 10.20.0.12, staging-db-1: 10.20.0.21}
    max_app_hosts: 1
    playbook_dir: "{{ playbook_dir }}"
    run_dir: /srv/runs/20260101T000000Z-drill
"""

RETURN = r"""
scenarios:
  description:
    - The chosen scenarios with their catalogue entry, C(unavailable) (null or the reason), C(dir) and, for faults
      scoped to the app on a fleet, C(limit) (the hosts the recovery runs on).
  type: list
  elements: dict
  returned: success
endpoints:
  description: Base URL of the app per app host, as the controller reaches it.
  type: dict
  returned: success
  sample: {staging-app-1: "http://10.20.0.11:3000", staging-app-2: "http://10.20.0.12:3000"}
not_applicable:
  description:
    - Scenarios of the whole catalogue left out because these hosts cannot have the fault (C(name), C(why)), for
      example the network faults on the one-host sandbox. Empty when scenarios were named.
  type: list
  elements: dict
  returned: success
fault_app_hosts:
  description: The app hosts a fault scoped to the app touches (the first C(max_app_hosts) of group C(app)).
  type: list
  elements: str
  returned: success
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_catalog, drill_fleet


def production_hosts(groups, targets):
    prod = set(groups.get("production") or [])
    return sorted(prod), sorted(prod & set(targets))


def main():
    module = AnsibleModule(argument_spec={
        "scenarios": {"type": "list", "elements": "str", "default": []},
        "overrides": {"type": "dict", "default": {}},
        "groups": {"type": "dict", "required": True},
        "target_hosts": {"type": "list", "elements": "str", "default": []},
        "environment": {"type": "str", "default": ""},
        "addresses": {"type": "dict", "default": {}},
        "local_url": {"type": "str", "default": "http://127.0.0.1:3000"},
        "app_port": {"type": "int", "default": 3000},
        "max_app_hosts": {"type": "int", "default": 1},
        "playbook_dir": {"type": "path", "required": True},
        "run_dir": {"type": "path", "required": True},
    }, supports_check_mode=True)
    p = module.params
    prod, touched = production_hosts(p["groups"], p["target_hosts"])
    if prod or touched or p["environment"] == "production":
        module.fail_json(msg="drill refused: the inventory is production (group production: %s; targeted: %s; "
                             "hb_environment=%s). Drills run only against the sandbox or a staging inventory; "
                             "there is no override." % (", ".join(prod) or "-", ", ".join(touched) or "-",
                                                        p["environment"] or "-"), refused=True)
    try:
        chosen = drill_catalog.select(p["scenarios"], p["overrides"])
    except drill_catalog.CatalogError as exc:
        module.fail_json(msg=str(exc), valid=drill_catalog.DEFAULT_ORDER)
    if p["max_app_hosts"] < 1:
        module.fail_json(msg="drill_max_app_hosts: %s; valid: a whole number of app hosts, 1 or more"
                             % p["max_app_hosts"])
    groups = p["groups"]
    app_hosts = list(groups.get("app") or [])
    db_host = (groups.get("db") or ["localhost"])[0]
    addresses = {k: str(v or "") for k, v in p["addresses"].items()}
    faulted = drill_fleet.fault_app_hosts(app_hosts, p["max_app_hosts"])
    # The whole catalogue (no scenario named) leaves out what these hosts cannot have, e.g. a network fault on
    # the one-host sandbox; a scenario asked for by name is kept and reported unavailable.
    not_applicable = []
    if not p["scenarios"]:
        why = {sc["name"]: drill_fleet.availability(sc, addresses, app_hosts, db_host) for sc in chosen}
        not_applicable = [{"name": name, "why": reason} for name, reason in why.items() if reason]
        chosen = [sc for sc in chosen if not why[sc["name"]]]
    for scenario in chosen:
        scenario["unavailable"] = (drill_catalog.availability(scenario, p["playbook_dir"])
                                   or drill_fleet.availability(scenario, addresses, app_hosts, db_host))
        scenario["limit"] = drill_fleet.recovery_limit(scenario, list(groups.get("all") or []), app_hosts, faulted)
        scenario["dir"] = os.path.join(p["run_dir"], scenario["name"])
    if not module.check_mode:
        for scenario in chosen:
            os.makedirs(scenario["dir"], exist_ok=True)
    module.exit_json(changed=not module.check_mode, scenarios=chosen, run_dir=p["run_dir"], fault_app_hosts=faulted,
                     not_applicable=not_applicable,
                     endpoints=drill_fleet.endpoints(app_hosts, addresses, p["local_url"], p["app_port"]))


if __name__ == "__main__":
    main()
