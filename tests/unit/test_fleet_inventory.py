"""fleet_inventory: the staging inventory re-addressed onto the local fleet's /24, nothing else changed."""

from __future__ import annotations

import copy

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.healthbutler.recovery.plugins.filter.fleet_inventory import fleet_inventory

STAGING = {"all": {
    "children": {"staging": {"children": {
        "app": {"hosts": {"staging-app-1": {"ansible_host": "10.20.0.11"},
                          "staging-app-2": {"ansible_host": "10.20.0.12"}}},
        "db": {"hosts": {"staging-db-1": {"ansible_host": "10.20.0.21"}}},
        "cache": {"hosts": {"staging-cache-1": {"ansible_host": "10.20.0.31"}}},
        "backup": {"hosts": {"staging-backup-1": {"ansible_host": "10.20.0.41"}}},
    }}},
    "vars": {"ansible_user": "deploy"},
}}


def test_addresses_keep_their_last_octet_and_nothing_else_moves():
    original = copy.deepcopy(STAGING)
    out = fleet_inventory(STAGING, "10.212.12", group_vars={"hb_app_port": 3000, "ansible_user": "x"},
                          local_vars={"hb_credentials_dir": "/s/credentials"})
    assert original == STAGING  # the input is not modified
    hosts = out["inventory"]["all"]["children"]["staging"]["children"]
    assert hosts["db"]["hosts"]["staging-db-1"] == {"ansible_host": "10.212.12.21"}
    assert hosts["app"]["hosts"]["staging-app-2"] == {"ansible_host": "10.212.12.12"}
    # group_vars, then the inventory's own all.vars, then the local additions.
    assert out["inventory"]["all"]["vars"] == {"hb_app_port": 3000, "ansible_user": "deploy",
                                               "hb_credentials_dir": "/s/credentials"}
    assert out["hosts"] == [
        {"name": "staging-app-1", "address": "10.212.12.11", "octet": 11, "groups": ["app"]},
        {"name": "staging-app-2", "address": "10.212.12.12", "octet": 12, "groups": ["app"]},
        {"name": "staging-db-1", "address": "10.212.12.21", "octet": 21, "groups": ["db"]},
        {"name": "staging-cache-1", "address": "10.212.12.31", "octet": 31, "groups": ["cache"]},
        {"name": "staging-backup-1", "address": "10.212.12.41", "octet": 41, "groups": ["backup"]},
    ]


def test_a_host_in_two_groups_is_listed_once_with_both():
    inv = {"all": {"children": {"db": {"hosts": {"h": {"ansible_host": "10.0.0.5"}}},
                                "backup": {"hosts": {"h": None}}}}}
    out = fleet_inventory(inv, "10.9.9")
    assert out["hosts"] == [{"name": "h", "address": "10.9.9.5", "octet": 5, "groups": ["db", "backup"]}]


@pytest.mark.parametrize("inventory, network, message", [
    ({"all": {"hosts": {"h": {}}}}, "10.1.1", "has no ansible_host"),
    ({"all": {"hosts": {"h": {"ansible_host": "db.example"}}}}, "10.1.1", "host h"),
    ({"all": {"hosts": {"h": {"ansible_host": "10.0.0.1"}}}}, "10.1.1", "reserved"),
    ({"all": {"hosts": {"a": {"ansible_host": "10.0.0.7"}, "b": {"ansible_host": "10.0.1.7"}}}}, "10.1.1",
     "share the last octet 7"),
    ({"all": {"hosts": {"h": {"ansible_host": "10.0.0.7"}}}}, "10.1", "three octets"),
    ({"hosts": {}}, "10.1.1", "an 'all' group"),
])
def test_refuses_what_cannot_be_re_addressed(inventory, network, message):
    with pytest.raises(AnsibleFilterError, match=message):
        fleet_inventory(inventory, network)
