"""The command runner: argv lists, env for secrets, errors that carry evidence."""

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import (
    CommandError,
    SubprocessRunner,
)


def test_subprocess_runner_runs_argv_with_env():
    res = SubprocessRunner().run(["sh", "-c", 'printf "%s" "$HB_X"'], env={"HB_X": "value"})
    assert res.ok and res.stdout == "value"


def test_missing_binary_is_rc_127():
    res = SubprocessRunner().run(["/nonexistent/binary"])
    assert res.rc == 127


def test_check_raises_with_rc_and_stderr():
    with pytest.raises(CommandError) as err:
        SubprocessRunner().check(["sh", "-c", "echo boom >&2; exit 4"], what="boom-maker")
    assert err.value.rc == 4
    assert "boom-maker failed (rc=4): boom" in err.value.msg
    assert err.value.as_dict()["stderr"] == "boom\n"


def test_timeout_is_rc_124():
    res = SubprocessRunner().run(["sleep", "5"], timeout=0.2)
    assert res.rc == 124
