"""diagnose_report action: writes both reports atomically with private modes; check mode writes nothing."""

import json
import os
import stat
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.healthbutler.recovery.plugins.action.diagnose_report import ActionModule


def action(args, check_mode=False):
    task = mock.MagicMock()
    task.args = args
    task.check_mode = check_mode
    task.async_val = 0
    plugin = ActionModule(task, mock.MagicMock(), mock.MagicMock(), loader=None, templar=None,
                          shared_loader_obj=None)
    with mock.patch("ansible.plugins.action.ActionBase.run", return_value={}):
        return plugin.run(task_vars={})


def test_writes_both_reports_then_changes_nothing(tmp_path):
    run_dir = str(tmp_path / "runs" / "20261129T000000Z-diagnose")
    args = {"run_dir": run_dir, "result": {"classification": {"healthy": True}}, "markdown": "# Diagnosis\n"}
    first = action(args)
    assert first["changed"] is True
    with open(first["paths"]["json"], encoding="utf-8") as fh:
        assert json.load(fh) == {"classification": {"healthy": True}}
    assert stat.S_IMODE(os.stat(run_dir).st_mode) == 0o750
    assert stat.S_IMODE(os.stat(first["paths"]["markdown"]).st_mode) == 0o640
    assert action(args)["changed"] is False


def test_check_mode_writes_nothing(tmp_path):
    out = action({"run_dir": str(tmp_path / "x"), "result": {}, "markdown": ""}, check_mode=True)
    assert not os.path.exists(tmp_path / "x") and "would write" in out["msg"]


def test_missing_arguments_are_named(tmp_path):
    with pytest.raises(AnsibleActionFail, match="needs run_dir"):
        action({"run_dir": str(tmp_path), "result": "not a dict", "markdown": ""})
