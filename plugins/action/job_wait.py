# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""job_wait: wait for an async job in one task, polling it often but printing a progress line only now and then."""

from __future__ import absolute_import, division, print_function

import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("jid", "timeout", "poll", "report_every", "progress_file", "what", "cleanup"))

    def _last_line(self, path):
        if not path:
            return ""
        res = self._low_level_execute_command("tail -n 1 %s 2>/dev/null" % self._connection._shell.quote(path))
        return to_text(res.get("stdout", "")).strip()

    def _wait_on_host(self, results_file, seconds):
        """Wait on the host itself, up to ``seconds``, until the job's results file no longer says it has only
        started (async_wrapper replaces it with the module's result when the job ends): one cheap shell command
        instead of an async_status module call every poll, and the end is seen within 0.1 s. async_status still
        judges the result afterwards; this only says when to ask."""
        tries = max(1, int(seconds * 10))
        quoted = self._connection._shell.quote(results_file)
        cmd = ("i=0; while [ $i -lt %d ]; do grep -q '\"started\": true' %s 2>/dev/null || exit 0; sleep 0.1; "
               "i=$((i+1)); done; exit 0" % (tries, quoted))
        self._low_level_execute_command(cmd)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        jid = args.get("jid")
        if not jid:
            raise AnsibleActionFail("job_wait needs jid (the ansible_job_id of an async task)")
        timeout = int(args.get("timeout", 3600))
        poll = float(args.get("poll", 0.5))
        every = int(args.get("report_every", 15))
        what = args.get("what", "job")
        host = task_vars.get("inventory_hostname", "?")
        start = time.monotonic()
        last_report = start
        polls = 0
        async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        while True:
            status = self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                                          module_args={"jid": jid, "mode": "status", "_async_dir": async_dir})
            polls += 1
            elapsed = time.monotonic() - start
            if status.get("finished") or status.get("failed") and not status.get("started"):
                break
            if elapsed > timeout:
                result.update(failed=True, msg="%s (job %s) did not end within %ss" % (what, jid, timeout),
                              waited_s=round(elapsed, 1), polls=polls)
                return result
            if time.monotonic() - last_report >= every:
                last_report = time.monotonic()
                progress = self._last_line(args.get("progress_file"))
                display.display("[%s] %s running, %ds elapsed%s" % (host, what, elapsed,
                                                                    ("; " + progress) if progress else ""))
            results_file = status.get("results_file") or "%s/%s" % (async_dir.rstrip("/"), jid)
            if status.get("started") and not status.get("finished"):
                self._wait_on_host(results_file, min(every, max(poll, timeout - elapsed)))
            else:
                time.sleep(poll)
        if boolean(args.get("cleanup", False), strict=False):
            self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                                 module_args={"jid": jid, "mode": "cleanup", "_async_dir": async_dir})
        status.pop("invocation", None)
        result.update(status)
        result.update(waited_s=round(time.monotonic() - start, 1), polls=polls)
        return result
