"""diagnose module: sections follow the host's groups unless given."""

import pytest

from ansible_collections.healthbutler.recovery.plugins.modules.diagnose import choose_sections


@pytest.mark.parametrize("sections,groups,expected", [
    (None, [], ["host"]),
    (None, ["app"], ["host", "app"]),
    (None, ["db"], ["host", "postgres"]),
    (None, ["cache", "backup"], ["host", "redis", "backups"]),
    (None, ["backup", "cache", "db", "app", "production"], ["host", "app", "postgres", "redis", "backups"]),
    (["postgres"], ["app", "db"], ["postgres"]),
    (["redis", "host"], [], ["host", "redis"]),
])
def test_sections_by_groups_or_given(sections, groups, expected):
    assert choose_sections(sections, groups) == expected


@pytest.mark.parametrize("name,value,valid", [
    ("latency_samples", 0, "1 to 20"),
    ("latency_samples", 21, "1 to 20"),
    ("log_lines", -1, "0 to 10000"),
    ("http_timeout", 0, "1 to 300"),
])
def test_out_of_range_numbers_are_named_with_what_is_valid(monkeypatch, name, value, valid):
    from module_helpers import run_module

    from ansible_collections.healthbutler.recovery.plugins.modules import diagnose
    failed, result = run_module(diagnose, {"sections": ["host"], name: value}, monkeypatch)
    assert failed and result["msg"] == "%s=%s is out of range: give a whole number from %s" % (name, value, valid)


def test_a_standby_host_gets_the_replication_section():
    from ansible_collections.healthbutler.recovery.plugins.modules.diagnose import choose_sections
    assert choose_sections(None, ["db_standby"]) == ["host", "replication"]
    assert choose_sections(None, ["db"]) == ["host", "postgres"]
