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
