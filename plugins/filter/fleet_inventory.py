# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""fleet_inventory filter: the staging inventory re-addressed for the local staging fleet."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_inventory
author: healthbutler.recovery maintainers
version_added: "0.1.0"
short_description: The staging inventory with its hosts moved onto the local fleet's /24
description:
  - Takes the parsed C(hosts.yml) of C(inventories/staging) and returns the same inventory
    in which every host's C(ansible_host) is the fleet network's address with the same last
    octet (C(10.20.0.21) becomes C(<network>.21)); nothing else of the host layout changes.
  - The C(all) group's vars become O(group_vars) (the staging inventory's C(group_vars/all)
    files, merged in order) updated with the inventory's own C(all.vars) and then with
    O(local_vars) (how the controller reaches the local fleet - key, known hosts, secrets).
  - Also lists the hosts (name, address, last octet, groups) for the namespace plumbing.
  - Pure function, no I/O.
options:
  _input:
    description: The staging inventory (C(hosts.yml) parsed as YAML).
    type: dict
    required: true
  network:
    description: First three octets of the fleet's /24, for example C(10.212.12).
    type: str
    required: true
  group_vars:
    description: Variables of C(group_vars/all) of the staging inventory.
    type: dict
    default: {}
  local_vars:
    description: Variables only the local fleet needs (connection, secrets sources).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Write the inventory of the local fleet
  ansible.builtin.copy:
    dest: .staging/inventory.yml
    content: "{{ (staging | healthbutler.recovery.fleet_inventory(network='10.212.12')).inventory | to_nice_yaml }}"
    mode: "0600"
  vars:
    staging: "{{ lookup('ansible.builtin.file', 'inventories/staging/hosts.yml') | from_yaml }}"
"""

RETURN = r"""
_value:
  description: The fleet inventory and its hosts.
  type: dict
  contains:
    inventory:
      description: The inventory, ready for C(to_nice_yaml).
      type: dict
    hosts:
      description: One entry per host, in inventory order, with C(name), C(address), C(octet) and C(groups)
        (the groups that list it directly, e.g. C([app])).
      type: list
      elements: dict
"""

import copy
import ipaddress

from ansible.errors import AnsibleFilterError


def _walk(group, name, out, path):
    for host, hvars in (group.get("hosts") or {}).items():
        entry = out.setdefault(host, {"name": host, "hvars": [], "groups": []})
        entry["groups"].append(name)
        entry["hvars"].append(hvars)
    for child, sub in (group.get("children") or {}).items():
        if child in path:
            raise AnsibleFilterError(f"fleet_inventory: group {child} is its own ancestor")
        _walk(sub or {}, child, out, path + (child,))


def fleet_inventory(staging, network, group_vars=None, local_vars=None):
    """Return {'inventory': <staging re-addressed onto network>, 'hosts': [...]}."""
    if not isinstance(staging, dict) or not isinstance(staging.get("all"), dict):
        raise AnsibleFilterError("fleet_inventory: the input must be an inventory with an 'all' group")
    try:
        net = ipaddress.ip_network(f"{network}.0/24")
    except ValueError as exc:
        raise AnsibleFilterError(f"fleet_inventory: network must be three octets such as 10.212.12: {exc}") from exc
    inventory = copy.deepcopy(staging)
    found = {}
    _walk(inventory["all"], "all", found, ("all",))
    hosts = []
    used = {}
    for name, entry in found.items():
        hvars = [h for h in entry["hvars"] if isinstance(h, dict) and h.get("ansible_host")]
        if not hvars:
            raise AnsibleFilterError(f"fleet_inventory: host {name} has no ansible_host to re-address")
        try:
            octet = int(ipaddress.ip_address(str(hvars[0]["ansible_host"])).packed[-1])
        except ValueError as exc:
            raise AnsibleFilterError(f"fleet_inventory: host {name}: {exc}") from exc
        if octet in (0, 1, 255):
            raise AnsibleFilterError(f"fleet_inventory: host {name} would get {net.network_address + octet}, "
                                     "reserved (network, bridge or broadcast)")
        if octet in used:
            raise AnsibleFilterError(f"fleet_inventory: hosts {used[octet]} and {name} share the last octet {octet}")
        used[octet] = name
        address = str(net.network_address + octet)
        for h in hvars:
            h["ansible_host"] = address
        hosts.append({"name": name, "address": address, "octet": octet,
                      "groups": [g for g in entry["groups"] if g != "all"]})
    merged = dict(group_vars or {})
    merged.update(inventory["all"].get("vars") or {})
    merged.update(local_vars or {})
    inventory["all"]["vars"] = merged
    return {"inventory": inventory, "hosts": hosts}


class FilterModule:
    """healthbutler.recovery.fleet_inventory."""

    def filters(self):
        return {"fleet_inventory": fleet_inventory}
