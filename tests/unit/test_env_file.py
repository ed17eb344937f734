""".env parsing, redacted key diff, kept copy and atomic install."""

import os
import stat
from pathlib import Path

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import env_file

SECRET_A = "s3cr3t-value-AAAAAAAAAAAAAAAAAAAAAAAAAAAA"
SECRET_B = "s3cr3t-value-BBBBBBBBBBBBBBBBBBBBBBBB"


@pytest.mark.parametrize("text, expected", [
    ("A=1\nB=two\n", {"A": "1", "B": "two"}),
    ("# comment\n\n  C = spaced  \n", {"C": "spaced"}),
    ("export D=exported\n", {"D": "exported"}),
    ("E=\"quoted value\"\nF='single'\n", {"E": "quoted value", "F": "single"}),
    ("URL=postgres://u:p@h:5432/db?x=1\n", {"URL": "postgres://u:p@h:5432/db?x=1"}),
    ("G=1\nG=2\n", {"G": "2"}),
    ("no_equals_sign\n=novalue\n", {}),
    ("H=\n", {"H": ""}),
])
def test_parse_env(text, expected):
    assert env_file.parse_env(text) == expected


def test_diff_keys_never_contains_values():
    current = {"JWT_SECRET": SECRET_A, "ONLY_NOW": SECRET_A, "PORT": "3000"}
    backup = {"JWT_SECRET": SECRET_B, "PORT": "3000", "SMS_API_KEY": SECRET_B}
    diff = env_file.diff_keys(current, backup)
    assert diff["added"] == ["SMS_API_KEY"] and diff["removed"] == ["ONLY_NOW"]
    assert diff["changed"] == ["JWT_SECRET"] and diff["same"] == 1 and diff["differ"]
    assert "~ JWT_SECRET: <redacted: 41 chars> -> <redacted: 37 chars>" in diff["lines"]
    text = repr(diff)
    assert SECRET_A not in text and SECRET_B not in text and "3000" not in text


def test_diff_keys_identical():
    diff = env_file.diff_keys({"A": "1"}, {"A": "1"})
    assert not diff["differ"] and diff["lines"] == [] and diff["same"] == 1


@pytest.mark.parametrize("value, shown", [(None, "<absent>"), ("", "<empty>"), ("abc", "<redacted: 3 chars>")])
def test_mask(value, shown):
    assert env_file.mask(value) == shown


def test_keep_previous_and_install(tmp_path):
    live, backup = tmp_path / ".env", tmp_path / "env.backup"
    live.write_text("JWT_SECRET=%s\n" % SECRET_A)
    os.chmod(live, 0o640)
    backup.write_text("JWT_SECRET=%s\n" % SECRET_B)
    kept = env_file.keep_previous(str(live), "20261128T000000Z")
    assert kept.endswith(".env.pre_restore_20261128T000000Z")
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o640
    assert Path(kept).read_text(encoding="utf-8") == "JWT_SECRET=%s\n" % SECRET_A
    with pytest.raises(FileExistsError):
        env_file.keep_previous(str(live), "20261128T000000Z")
    env_file.install(str(backup), str(live), 0o600, os.getuid(), os.getgid())
    assert stat.S_IMODE(os.stat(live).st_mode) == 0o600
    assert env_file.read_env(str(live)) == {"JWT_SECRET": SECRET_B}
    assert sorted(os.listdir(tmp_path)) == [".env", ".env.pre_restore_20261128T000000Z", "env.backup"]


@pytest.mark.parametrize("text,expected", [
    ("A=1\nDATABASE_URL=postgresql://u:p@h:1/d\nB=2\n", "A=1\nDATABASE_URL=NEW\nB=2\n"),
    ('export DATABASE_URL="postgresql://u:p@h:1/d"\r\n', 'export DATABASE_URL="NEW"\r\n'),
    ("DATABASE_URL=old\n# comment\nDATABASE_URL=last", "DATABASE_URL=old\n# comment\nDATABASE_URL=NEW"),
])
def test_replace_value_keeps_every_other_byte(text, expected):
    from ansible_collections.healthbutler.recovery.plugins.module_utils.env_file import replace_value
    assert replace_value(text, "DATABASE_URL", "NEW") == expected


def test_replace_value_missing_key():
    from ansible_collections.healthbutler.recovery.plugins.module_utils.env_file import replace_value
    with pytest.raises(KeyError):
        replace_value("A=1\n", "DATABASE_URL", "x")
