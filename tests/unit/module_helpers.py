"""Run a module's main() in-process and capture what it returned."""

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class ModuleExit(Exception):
    def __init__(self, failed, result):
        super().__init__(result.get("msg", ""))
        self.failed = failed
        self.result = result


def run_module(module, args, monkeypatch, check_mode=False, diff=False):
    """Return ``(failed, result)`` of ``module.main()`` called with ``args``."""
    def exit_json(self, **kwargs):
        raise ModuleExit(False, kwargs)

    def fail_json(self, msg, **kwargs):
        raise ModuleExit(True, dict(kwargs, msg=msg))

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    with patch_module_args(args), pytest.raises(ModuleExit) as exc:
        module.main()
    return exc.value.failed, exc.value.result
