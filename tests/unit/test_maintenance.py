"""maintenance: the flag file's plan, atomic write and removal."""

import json

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import maintenance as mm


@pytest.mark.parametrize("state,current,expected", [
    ("on", None, "write"), ("on", {"reason": "x"}, None), ("on", {}, None),
    ("off", {"reason": "x"}, "remove"), ("off", None, None),
])
def test_plan(state, current, expected):
    assert mm.plan(state, current) == expected


def test_write_read_remove(tmp_path):
    flag = tmp_path / "maintenance.flag"
    assert mm.read_flag(str(flag)) is None
    mm.write_flag(str(flag), mm.flag_record("restore", 120, now=0))
    assert json.loads(flag.read_text()) == {"reason": "restore", "retry_after": 120, "since": "1970-01-01T00:00:00Z"}
    assert mm.read_flag(str(flag))["reason"] == "restore"
    assert [p.name for p in tmp_path.iterdir()] == ["maintenance.flag"]
    mm.remove_flag(str(flag))
    assert not flag.exists()


def test_a_foreign_flag_counts_as_on(tmp_path):
    flag = tmp_path / "maintenance.flag"
    flag.write_text("touched by hand\n")
    assert mm.read_flag(str(flag)) == {}
    assert mm.plan("on", mm.read_flag(str(flag))) is None


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(OSError, match="does not exist"):
        mm.write_flag(str(tmp_path / "nope" / "flag"), mm.flag_record("x", 60))
