"""Unit-test helpers: a scripted command runner instead of real binaries."""

import re

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandRunner, Result


class FakeRunner(CommandRunner):
    """Answers commands from a script of (pattern, rc, stdout, stderr) rules.

    A rule matches when its regex is found in the argv joined by spaces; the
    first match wins. Every call is recorded in ``calls`` with env and stdin.
    """

    def __init__(self, rules=None):
        self.rules = list(rules or [])
        self.calls = []

    def add(self, pattern, rc=0, stdout="", stderr=""):
        self.rules.append((pattern, rc, stdout, stderr))
        return self

    def _run(self, argv, env, data, cwd, timeout):
        line = " ".join(argv)
        self.calls.append({"argv": argv, "env": env, "data": data, "cwd": cwd})
        for pattern, rc, out, err in self.rules:
            if re.search(pattern, line + " " + (data or "")):
                out = out(argv, data) if callable(out) else out
                return Result(rc, out, err)
        raise AssertionError("unexpected command: %s" % line)

    def argv_lines(self):
        return [" ".join(c["argv"]) for c in self.calls]


@pytest.fixture
def fake_runner():
    return FakeRunner()
