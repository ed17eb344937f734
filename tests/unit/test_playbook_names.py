"""Playbooks are runnable by FQCN (ansible-core resolves only \\w names); the old dashed names stay as aliases."""

import os
import re

import pytest
import yaml

PLAYBOOKS = os.path.join(os.path.dirname(__file__), "..", "..", "playbooks")
ALL = sorted(f for f in os.listdir(PLAYBOOKS) if f.endswith(".yml"))
ALIASES = [f for f in ALL if "-" in f]


def test_every_playbook_but_the_aliases_has_an_fqcn_name():
    names = [f[:-4] for f in ALL if f not in ALIASES]
    assert "recover_db" in names and "verify_backups" in names
    assert all(re.fullmatch(r"\w+", n) for n in names), names


@pytest.mark.parametrize("alias", ALIASES)
def test_dashed_name_is_a_one_play_import_of_its_underscore_twin(alias):
    with open(os.path.join(PLAYBOOKS, alias), encoding="utf-8") as fh:
        plays = yaml.safe_load(fh)
    target = alias.replace("-", "_")
    assert len(plays) == 1 and plays[0]["ansible.builtin.import_playbook"] == target
    assert os.path.exists(os.path.join(PLAYBOOKS, target))


def test_the_nine_old_names_are_kept():
    assert {a[:-4] for a in ALIASES} == {
        "cleanup-preserved", "incident-report", "recover-db-connection", "recover-db", "recover-memory",
        "restart-app", "restore-files", "triage-performance", "verify-backups"}
