"""The shared argument_spec entries (module_utils/common_options.py) and their doc fragments say the same."""

import pytest
import yaml

from ansible_collections.healthbutler.recovery.plugins.doc_fragments import backup_location, pm2, postgres
from ansible_collections.healthbutler.recovery.plugins.module_utils import common_options as co

CASES = [
    (co.postgres_server(), postgres.ModuleDocFragment.DOCUMENTATION),
    (co.postgres_client(), postgres.ModuleDocFragment.CLIENT),
    (co.pm2_options(), pm2.ModuleDocFragment.DOCUMENTATION),
    (co.backup_location(), backup_location.ModuleDocFragment.DOCUMENTATION),
]


@pytest.mark.parametrize("spec, fragment", CASES, ids=["postgres", "postgres.client", "pm2", "backup_location"])
def test_spec_and_fragment_agree(spec, fragment):
    doc = yaml.safe_load(fragment)["options"]
    assert sorted(doc) == sorted(spec)
    for name, entry in spec.items():
        d = doc[name]
        assert d["type"] == entry["type"], name
        assert d.get("default") == entry.get("default"), name
        assert bool(d.get("required")) == bool(entry.get("required")), name
        assert d.get("aliases", []) == entry.get("aliases", []), name


def test_one_name_per_option_the_old_names_are_aliases():
    spec = co.postgres_server()
    assert {n: e["aliases"] for n, e in spec.items()} == {
        "pg_bindir": ["bindir"], "pg_port": ["port"], "pg_socket_dir": ["socket_dir"], "pg_os_user": ["os_user"]}
    assert co.postgres_server(required=False)["pg_bindir"]["required"] is False
    assert co.backup_location(wal_required=True)["wal_dir"]["required"] is True


def test_each_call_returns_a_fresh_dict():
    a = co.postgres_client()
    a["pg_port"]["default"] = 1
    assert co.postgres_client()["pg_port"]["default"] == 5432


def _module_options(name):
    """The module's documented options with its doc fragments merged in (as ansible-doc merges them)."""
    import importlib

    mod = importlib.import_module("ansible_collections.healthbutler.recovery.plugins.modules." + name)
    doc = yaml.safe_load(mod.DOCUMENTATION)
    options = {}
    for frag in doc.get("extends_documentation_fragment") or []:
        parts = frag.split(".")[2:]
        fmod = importlib.import_module("ansible_collections.healthbutler.recovery.plugins.doc_fragments." + parts[0])
        attr = parts[1].upper() if len(parts) > 1 else "DOCUMENTATION"
        for opt, entry in yaml.safe_load(getattr(fmod.ModuleDocFragment, attr))["options"].items():
            options[opt] = dict(entry)
    for opt, entry in (doc.get("options") or {}).items():
        options.setdefault(opt, {}).update(entry)
    return options


GROUP_OPTIONS = {"postgres": ("pg_bindir", "pg_port"), "backup": ("backup_dir",)}


def _groups():
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "..", "meta", "runtime.yml")
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)["action_groups"]


@pytest.mark.parametrize("group", sorted(GROUP_OPTIONS))
def test_every_module_of_an_action_group_takes_its_options(group):
    for name in _groups()[group]:
        options = _module_options(name)
        assert set(GROUP_OPTIONS[group]) <= set(options), (group, name, sorted(options))


def test_no_module_names_a_shared_option_the_old_way():
    import os

    here = os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "modules")
    for fname in sorted(os.listdir(here)):
        if not fname.endswith(".py") or fname == "__init__.py":
            continue
        options = _module_options(fname[:-3])
        old = set()
        if "pg_bindir" in options:
            old |= {"bindir", "port", "socket_dir", "os_user", "host", "user", "password", "db", "pg_db"}
        if "backup_dir" in options:
            old.add("path")
        assert not old & set(options), (fname, sorted(old & set(options)))
        takers = {o for o in options if o in ("pg_bindir", "pg_port", "pg_socket_dir", "pg_os_user")}
        for opt in takers:
            assert options[opt].get("aliases"), (fname, opt)


def test_every_module_taking_a_groups_options_is_in_the_group():
    import os

    here = os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "modules")
    groups = _groups()
    for fname in sorted(os.listdir(here)):
        if fname.endswith(".py") and fname != "__init__.py":
            options = _module_options(fname[:-3])
            if {"pg_bindir", "pg_port"} <= set(options):
                assert fname[:-3] in groups["postgres"], fname
