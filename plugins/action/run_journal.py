# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Adds who is running (this controller's host and ansible-playbook process) to the run_journal module's arguments,
and which ansible-playbook processes live on this controller, so a host can tell a live run from a dead one."""

from __future__ import absolute_import, division, print_function

import os
import socket

from ansible.plugins.action import ActionBase

from ansible_collections.healthbutler.recovery.plugins.module_utils.run_journal import processes


def start_time(pid):
    """The process's start time in clock ticks since boot (with the pid, it names one process for good)."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def playbook_process():
    """The ansible-playbook process this task belongs to: the worker's parent, or the worker itself."""
    for pid in (os.getppid(), os.getpid()):
        if pid in dict(live_playbooks()):
            return pid
    return os.getppid()


def live_playbooks():
    """(pid, argv) of every ansible-playbook process on this controller."""
    return [(pid, argv) for pid, argv in processes() if any(os.path.basename(arg) == "ansible-playbook"
                                                            for arg in argv[:2])]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        pid = playbook_process()
        args = dict(self._task.args)
        args["controller"] = {"host": socket.gethostname(), "pid": pid, "start": start_time(pid)}
        args["live"] = ["%d:%s" % (p, start_time(p)) for p, _playbook in live_playbooks()]
        result.update(self._execute_module(module_name="healthbutler.recovery.run_journal", module_args=args,
                                           task_vars=task_vars))
        return result
