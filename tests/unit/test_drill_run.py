"""Running playbooks in their own process and detecting with the diagnosis (fake runner)."""

import json
import os

from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_run
from ansible_collections.healthbutler.recovery.plugins.modules.drill_plan import production_hosts


def test_run_playbook_passes_run_dir_vars_and_collects_failed_tasks(fake_runner, tmp_path):
    run_dir = tmp_path / "recover"
    run_dir.mkdir()
    (run_dir / "timeline.jsonl").write_text(
        json.dumps({"event": "task", "task": "Start", "status": "ok"}) + "\n"
        + json.dumps({"event": "task", "task": "Verify", "status": "failed", "host": "h", "msg": "503"}) + "\n")
    fake_runner.add(r"ansible-playbook /p/restart_app.yml -i inv -e @", rc=2, stdout="PLAY RECAP")
    got = drill_run.run_playbook(fake_runner, "ansible-playbook", "/p/restart_app.yml", ["inv"], str(run_dir),
                                 extra_vars={"x": 1}, timeout=30)
    call = fake_runner.calls[0]
    assert call["env"]["HB_RUN_DIR"] == str(run_dir) and call["env"]["LANG"] == "C.UTF-8"
    assert json.loads((run_dir / "extra-vars.json").read_text()) == {"x": 1}
    assert got["rc"] == 2 and got["evidence"] == "Verify: 503"
    assert (run_dir / "console.log").read_text() == "PLAY RECAP"


def test_detect_polls_until_classified(fake_runner, tmp_path):
    playbook = tmp_path / "diagnose.yml"
    playbook.write_text("---\n")
    answers = [None, {"severity": "P0", "scenarios": [1], "findings": [{"name": "app down"}]}]

    def fake(argv, data):
        sub = argv[argv.index("-e") + 1][1:]
        run_dir = os.path.dirname(sub)
        diag = answers.pop(0)
        if diag:
            with open(os.path.join(run_dir, "diagnosis.json"), "w", encoding="utf-8") as fh:
                json.dump(diag, fh)
        return ""
    fake_runner.add("diagnose.yml", rc=0, stdout=fake)
    got = drill_run.detect(fake_runner, "ansible-playbook", str(playbook), ["inv"], str(tmp_path / "d"),
                           attempts=3, delay=0, sleep=lambda s: None)
    assert got["status"] == "detected" and got["attempts"] == 2
    assert got["p_level"] == "P0" and got["scenarios"] == [1] and got["findings"] == ["app down"]


def test_detect_reports_a_miss_and_a_missing_playbook(fake_runner, tmp_path):
    playbook = tmp_path / "diagnose.yml"
    playbook.write_text("---\n")
    fake_runner.add("diagnose.yml", rc=0)
    got = drill_run.detect(fake_runner, "ansible-playbook", str(playbook), [], str(tmp_path / "d"), attempts=2,
                           delay=0, sleep=lambda s: None)
    assert got["status"] == "missed" and got["detail"] == "not detected after 2 diagnosis run(s)"
    got = drill_run.detect(fake_runner, "ansible-playbook", str(tmp_path / "none.yml"), [], str(tmp_path / "e"))
    assert got == {"status": "unavailable", "detail": "unavailable: none.yml missing", "attempts": 0}


def test_production_group_is_refused_whoever_is_targeted():
    groups = {"production": ["production-app-1"], "app": ["production-app-1"], "staging": []}
    assert production_hosts(groups, ["production-app-1"]) == (["production-app-1"], ["production-app-1"])
    assert production_hosts({"app": ["s1"], "staging": ["s1"]}, ["s1"]) == ([], [])


def _diagnose_answers(fake_runner, answers):
    def fake(argv, data):
        sub = argv[argv.index("-e") + 1][1:]
        diag = answers.pop(0)
        if diag:
            with open(os.path.join(os.path.dirname(sub), "diagnosis.json"), "w", encoding="utf-8") as fh:
                json.dump(diag, fh)
        return ""
    fake_runner.add("diagnose.yml", rc=0, stdout=fake)


def _finding(fid, severity, scenario):
    return {"id": fid, "severity": severity, "scenario": scenario, "summary": fid.replace("_", " ")}


def test_detect_leaves_out_host_load_that_the_baseline_had(fake_runner, tmp_path):
    playbook = tmp_path / "diagnose.yml"
    playbook.write_text("---\n")
    diag = {"classification": {"severity": "P3", "scenarios": [4], "findings": [
        _finding("host_cpu_high", "P3", 4), _finding("db_locks_waiting", "P2", 4)]}}
    diag["classification"]["findings"].sort(key=lambda f: f["severity"])
    _diagnose_answers(fake_runner, [diag, diag])
    got = drill_run.detect(fake_runner, "ansible-playbook", str(playbook), [], str(tmp_path / "d"), attempts=1,
                           ignore=["host_cpu_high"])
    assert got["p_level"] == "P2" and got["ignored_baseline"] == ["host_cpu_high"]
    assert got["findings"] == ["db_locks_waiting: db locks waiting"]
    # without a baseline to ignore, the diagnosis' own classification stands
    got = drill_run.detect(fake_runner, "ansible-playbook", str(playbook), [], str(tmp_path / "e"), attempts=1)
    assert got["p_level"] == "P3" and got["ignored_baseline"] == []


def test_baseline_is_clean_with_host_load_only_and_names_residue(fake_runner, tmp_path):
    playbook = tmp_path / "diagnose.yml"
    playbook.write_text("---\n")
    residue = {"classification": {"findings": [_finding("app_heap_oom", "P1", 3), _finding("host_cpu_high", "P3", 4)]}}
    load_only = {"classification": {"findings": [_finding("host_cpu_high", "P3", 4)]}}
    _diagnose_answers(fake_runner, [residue, load_only, residue, residue])
    got = drill_run.baseline(fake_runner, "ansible-playbook", str(playbook), [], str(tmp_path / "b"), attempts=3,
                             delay=0, sleep=lambda s: None)
    assert got["status"] == "clean" and got["attempts"] == 2 and got["host_load"] == ["host_cpu_high"]
    got = drill_run.baseline(fake_runner, "ansible-playbook", str(playbook), [], str(tmp_path / "c"), attempts=2,
                             delay=0, sleep=lambda s: None)
    assert got["status"] == "residue" and got["residue"] == ["app_heap_oom: app heap oom"]
    assert "app_heap_oom" in got["detail"]
