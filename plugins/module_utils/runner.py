# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Command execution without an AnsibleModule dependency.

Collectors and planners take a ``CommandRunner``; modules hand them an
``AnsibleRunner`` and unit tests a fake. Commands are argv lists; secrets
travel in ``env`` only, never in argv.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

# Linux's default pipe capacity: input this small is written in one go or not at all.
PIPE_BUFFER = 65536


class RecoveryError(Exception):
    """An operation was refused or failed: ``msg`` says why, ``details`` go beside it in ``fail_json``."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details

    def as_dict(self):
        return dict(self.details, msg=self.msg)


class CommandError(RecoveryError):
    """A command failed; carries what is needed for ``fail_json``."""

    def __init__(self, msg, argv=None, rc=None, stdout="", stderr=""):
        super().__init__(msg)
        self.argv = list(argv or [])
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def as_dict(self):
        return {"msg": self.msg, "cmd": self.argv, "rc": self.rc,
                "stdout": self.stdout, "stderr": self.stderr}


def fail_from(module, exc, result=None):
    """``fail_json`` with what ``exc`` (a RecoveryError) says, over what the module had gathered."""
    module.fail_json(**dict(result or {}, **exc.as_dict()))


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self):
        return self.rc == 0


class CommandRunner:
    """Run argv lists. Subclasses implement ``_run``."""

    def run(self, argv, env=None, data=None, cwd=None, timeout=None):
        """Return a ``Result``; never raises on a non-zero exit."""
        return self._run([str(a) for a in argv], env or {}, data, cwd, timeout)

    def check(self, argv, env=None, data=None, cwd=None, timeout=None, what=None):
        """Like ``run`` but raise ``CommandError`` on a non-zero exit."""
        res = self.run(argv, env=env, data=data, cwd=cwd, timeout=timeout)
        if res.rc != 0:
            raise CommandError("%s failed (rc=%s): %s" % (what or argv[0], res.rc,
                                                          (res.stderr or res.stdout).strip()[-2000:]),
                               argv, res.rc, res.stdout, res.stderr)
        return res

    def _run(self, argv, env, data, cwd, timeout):  # pragma: no cover - abstract
        raise NotImplementedError


class SubprocessRunner(CommandRunner):
    """Plain ``subprocess``; used by the callback, benchmarks and helpers."""

    def _run(self, argv, env, data, cwd, timeout):
        full_env = dict(os.environ, LANG="C", LC_ALL="C", **env)
        try:
            proc = subprocess.run(argv, input=data, capture_output=True, text=True,
                                  env=full_env, cwd=cwd, timeout=timeout, check=False)
        except FileNotFoundError as exc:
            return Result(127, "", str(exc))
        except subprocess.TimeoutExpired as exc:
            partial = exc.stdout if isinstance(exc.stdout, str) else ""
            return Result(124, partial, "timed out after %ss" % timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr)


class AnsibleRunner(CommandRunner):
    """Adapter over ``AnsibleModule.run_command`` (returns rc, stdout, stderr)."""

    def __init__(self, module):
        self.module = module

    def _run(self, argv, env, data, cwd, timeout):
        # run_command has no timeout; wrap with coreutils `timeout` when asked.
        if timeout:
            argv = ["timeout", "--kill-after=5", str(int(timeout))] + argv
        try:
            rc, out, err = self.module.run_command(
                argv, data=data, cwd=cwd, environ_update=dict({"LANG": "C", "LC_ALL": "C"}, **env),
                binary_data=False, check_rc=False, handle_exceptions=False)
        except BrokenPipeError:
            # The command exited before its input was written (psql refused by a full server exits at once):
            # input smaller than a pipe's buffer was not read at all, so running it again where a closed stdin is
            # no error gives its real exit code and message. Larger input may have been read in part: fail.
            if data is not None and len(data) < PIPE_BUFFER:
                return SubprocessRunner()._run(argv, env, data, cwd, None)
            self.module.fail_json(msg="Error executing command: broken pipe (it exited before reading its input)",
                                  cmd=argv, rc=32)
        except OSError as exc:  # what run_command reports itself when it handles the exception
            self.module.fail_json(msg="Error executing command: %s" % exc, cmd=argv, rc=exc.errno)
        return Result(rc, out, err)
