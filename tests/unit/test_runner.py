"""The command runner: argv lists, env for secrets, errors that carry evidence."""

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import (
    AnsibleRunner,
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


class _ClosedStdinModule:
    """run_command as it fails when the command exits before its input is written (psql refused at once)."""

    def __init__(self):
        self.failed = None

    def run_command(self, argv, **kwargs):
        assert kwargs["handle_exceptions"] is False
        raise BrokenPipeError(32, "Broken pipe")

    def fail_json(self, **kwargs):
        self.failed = kwargs
        raise SystemExit(1)


def test_a_command_that_exits_before_reading_small_input_gives_its_own_exit_and_message():
    argv = ["sh", "-c", "echo 'too many clients' >&2; exit 2"]
    res = AnsibleRunner(_ClosedStdinModule()).run(argv, data="SELECT 1;\n")
    assert (res.rc, res.stderr) == (2, "too many clients\n")


def test_a_broken_pipe_on_large_input_fails_the_module():
    module = _ClosedStdinModule()
    with pytest.raises(SystemExit):
        AnsibleRunner(module).run(["true"], data="x" * 70000)
    assert "broken pipe" in module.failed["msg"] and module.failed["rc"] == 32
