"""Execution environment and AWX: ansible-builder's build context, its introspection of the installed collection,
and a playbook run through ansible-runner the way AWX runs a job (private data dir with project/, inventory/, env/;
the collection installed from the project's collections/requirements.yml).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

import ansible_runner
import pytest
import yaml
from diagnose_helpers import ensure_backup
from harness import ROOT

BIN = os.path.dirname(sys.executable)
SERVER_SIDE = ("postgresql", "redis", "nodejs", "npm", "chromium", "openssh-server", "cron", "systemd")
DEV_PYTHON = ("pytest", "molecule", "ansible-lint", "ruff", "testinfra", "prometheus")


def run(argv, cwd, env=None):
    out = subprocess.run([os.path.join(BIN, argv[0])] + argv[1:], cwd=cwd, capture_output=True, text=True,
                         env=env, timeout=600, check=False)
    assert out.returncode == 0, "%s\n%s\n%s" % (argv, out.stdout[-3000:], out.stderr[-3000:])
    return out


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["PATH"] = BIN + os.pathsep + os.environ.get("PATH", "")
    env.update(extra)
    return env


def test_ansible_builder_create_writes_a_build_context_with_the_collection(tmp_path):
    context = tmp_path / "context"
    run(["ansible-builder", "create", "-f", os.path.join(ROOT, "docs", "ee", "execution-environment.yml"),
         "-c", str(context), "--output-filename", "Containerfile"], cwd=str(tmp_path))
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-galaxy collection install" in containerfile and "introspect" in containerfile
    assert "ansible-core==2.19.14" in containerfile and "ansible-runner==2.4.3" in containerfile
    with open(context / "_build" / "requirements.yml", encoding="utf-8") as fh:
        galaxy = yaml.safe_load(fh)
    assert [c["name"] for c in galaxy["collections"]] == ["healthbutler.recovery"]


def test_builder_introspection_of_the_installed_collection_is_controller_side_only(tmp_path):
    run(["ansible-galaxy", "collection", "build", "--output-path", str(tmp_path / "dist"), ROOT], cwd=str(tmp_path),
        env=clean_env())
    tarball = glob.glob(str(tmp_path / "dist" / "*.tar.gz"))[0]
    run(["ansible-galaxy", "collection", "install", tarball, "-p", str(tmp_path / "collections")], cwd=str(tmp_path),
        env=clean_env())
    out = run(["ansible-builder", "introspect", "--sanitize", str(tmp_path / "collections")], cwd=str(tmp_path))
    found = yaml.safe_load(out.stdout[out.stdout.index("python:"):] if "python:" in out.stdout else out.stdout)
    system = [line for line in (found.get("system") or []) if "healthbutler.recovery" in line]
    python = [line for line in (found.get("python") or []) if "healthbutler.recovery" in line]
    assert system and all(line.startswith("openssh-client") for line in system), system
    assert not [s for s in system if any(word in s for word in SERVER_SIDE)]
    assert not [p for p in python if any(word in p for word in DEV_PYTHON)], python


@pytest.fixture
def awx_job(tmp_path, sandbox):
    """A private data dir laid out as AWX lays out a job: project/ is a plain clone, collections/ what the project
    sync installed from project/collections/requirements.yml, inventory/ the sandbox's hosts, env/ the job's env."""
    pdd = tmp_path / "job"
    subprocess.run(["git", "clone", "-q", ROOT, str(pdd / "project")], check=True)
    assert not (pdd / "project" / ".collections").exists()  # no bootstrap link in a plain clone
    env = clean_env(ANSIBLE_COLLECTIONS_PATH=str(pdd / "collections"))
    # AWX's project update runs this from the project root (module_defaults chdir: project_path).
    run(["ansible-galaxy", "collection", "install", "-r", "collections/requirements.yml", "-p",
         str(pdd / "collections")], cwd=str(pdd / "project"), env=env)
    shutil.copytree(os.path.join(ROOT, "inventories", "sandbox"), pdd / "inventory")
    (pdd / "env").mkdir()
    (pdd / "env" / "envvars").write_text(yaml.safe_dump({
        "ANSIBLE_COLLECTIONS_PATH": str(pdd / "collections"), "ANSIBLE_NOCOLOR": "1",
        "HB_PORT_OFFSET": os.environ.get("HB_PORT_OFFSET", "0"), "HB_SANDBOX_DIR": sandbox.dir}))
    # What an AWX inventory would say about this machine instead of deriving it from a checkout.
    (pdd / "env" / "extravars").write_text(yaml.safe_dump({"hb_pm2_bin": sandbox["hb_pm2_bin"]}))
    return pdd


def test_a_playbook_runs_through_ansible_runner_as_awx_runs_a_job(awx_job, sandbox):
    installed = awx_job / "collections" / "ansible_collections" / "healthbutler" / "recovery"
    assert (installed / "roles" / "hb" / "meta" / "argument_specs.yml").is_file()
    assert not (installed / "Makefile").exists() and not (installed / "roles" / "sandbox").exists()
    sandbox.ensure_healthy()
    sandbox.flush_app_logs()  # traces of faults earlier tests injected
    made = ensure_backup(sandbox)
    run_dir = awx_job / "diagnosis"
    env = {k: v for k, v in os.environ.items() if k.startswith("ANSIBLE_")}
    try:
        for key in env:  # the job's environment is env/envvars and the project's ansible.cfg, nothing of ours
            del os.environ[key]
        runner = ansible_runner.run(private_data_dir=str(awx_job), playbook="playbooks/diagnose.yml",
                                    extravars={"diagnose_run_dir": str(run_dir),
                                               "diagnose_thresholds": {"cpu_percent": 100}}, quiet=True)
    finally:
        os.environ.update(env)
        if made:
            os.remove(made)
    stdout = runner.stdout.read()
    assert runner.rc == 0 and runner.status == "successful", stdout[-3000:]
    task_paths = {e["event_data"].get("task_path", "") for e in runner.events if e.get("event") == "runner_on_ok"}
    roles = [p for p in task_paths if "/roles/" in p]
    assert roles and all(p.startswith(str(installed) + "/roles/") for p in roles), roles
    with open(run_dir / "diagnosis.json", encoding="utf-8") as fh:
        report = json.load(fh)
    assert report["classification"]["healthy"] is True, report["classification"]["findings"]
    assert glob.glob(str(awx_job / "artifacts" / "*" / "job_events" / "*.json"))
