# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Controller-side writer of diagnosis.json and diagnosis.md (no module shipped, one step)."""

from __future__ import absolute_import, division, print_function

import json
import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.action import ActionBase


def write_file(path, text, mode):
    """Write ``text`` to ``path`` atomically with ``mode``; True when the content changed."""
    data = to_bytes(text)
    try:
        with open(path, "rb") as fh:
            if fh.read() == data:
                return False
    except OSError:
        pass
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("run_dir", "result", "markdown"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        run_dir = args.get("run_dir")
        if not run_dir or not isinstance(args.get("result"), dict) or not isinstance(args.get("markdown"), str):
            raise AnsibleActionFail("diagnose_report needs run_dir (a path), result (a dict) and markdown (text)")
        run_dir = os.path.abspath(os.path.expanduser(str(run_dir)))
        paths = {"json": os.path.join(run_dir, "diagnosis.json"), "markdown": os.path.join(run_dir, "diagnosis.md")}
        result.update(run_dir=run_dir, paths=paths, changed=False)
        if self._task.check_mode:
            result["msg"] = "check mode: would write %s" % ", ".join(paths.values())
            return result
        try:
            if not os.path.isdir(run_dir):
                os.makedirs(run_dir, mode=0o750)
                result["changed"] = True
            text = json.dumps(args["result"], indent=4, sort_keys=False, default=str) + "\n"
            result["changed"] |= write_file(paths["json"], text, 0o640)
            result["changed"] |= write_file(paths["markdown"], args["markdown"], 0o640)
        except OSError as exc:
            raise AnsibleActionFail("cannot write the diagnosis into %s: %s" % (run_dir, exc)) from exc
        return result
