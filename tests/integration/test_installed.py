"""The built collection, installed and run the way a user runs it: no checkout, no ansible.cfg of ours.

The tarball is built with ``ansible-galaxy collection build``, installed into a temporary collections path, and
every command runs from a directory outside the repository that has no ansible.cfg, with
``ANSIBLE_COLLECTIONS_PATH`` naming only that temporary path. The sandbox's inventory is the only file of the
checkout that is used (it is data about this machine, not part of the collection).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tarfile

import pytest
import recoverdb_helpers as h
from diagnose_helpers import ensure_backup
from harness import ROOT

BIN = os.path.dirname(sys.executable)
INVENTORY = os.path.join(ROOT, "inventories", "sandbox")
INSTALLED = ("ansible_collections", "healthbutler", "recovery")
DEV_TOOLING = ["Makefile", "ansible.cfg", "pyproject.toml", "requirements-dev.txt", ".ansible-lint",
               "scripts/bootstrap.sh", "roles/sandbox/tasks/main.yml", "roles/sandbox/files/app/src/server.js",
               "playbooks/sandbox.yml", "inventories/sandbox/hosts.yml", "tests/conftest.py",
               "molecule/default/molecule.yml", "bench/diagnose.py", ".ci/run", "collections/requirements.yml"]


def plugin_names(kind, ext="py"):
    folder = os.path.join(ROOT, "plugins", kind)
    return sorted(os.path.splitext(f)[0] for f in os.listdir(folder)
                  if f.endswith("." + ext) and f != "__init__.py")


def documented_filters():
    names = set(plugin_names("filter", "yml"))
    for name in plugin_names("filter"):
        with open(os.path.join(ROOT, "plugins", "filter", name + ".py"), encoding="utf-8") as fh:
            if "\nDOCUMENTATION" in fh.read():
                names.add(name)
    return sorted(names)


# Built from this checkout for its own tests; not shipped (galaxy.yml build_ignore).
DEV_ONLY_PLAYBOOKS = ("sandbox.yml", "staging.yml")
DEV_ONLY_ROLES = ("sandbox", "staging_fleet")


def fqcn_playbooks():
    return sorted(f[:-4] for f in os.listdir(os.path.join(ROOT, "playbooks"))
                  if f.endswith(".yml") and "-" not in f and f not in DEV_ONLY_PLAYBOOKS)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("installed")
    assert not str(base).startswith(ROOT + os.sep)
    work = base / "work"  # the directory every command runs from: outside the repository, no ansible.cfg
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({"ANSIBLE_COLLECTIONS_PATH": str(base / "collections"), "ANSIBLE_HOME": str(base / "home"),
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
                "PATH": BIN + os.pathsep + os.environ.get("PATH", "")})

    def run(*argv, check=True, extra_env=None):
        out = subprocess.run([os.path.join(BIN, argv[0])] + list(argv[1:]), cwd=str(work), capture_output=True,
                             text=True, env=dict(env, **(extra_env or {})), timeout=600, check=False)
        if check:
            assert out.returncode == 0, "%s\n%s\n%s" % (argv, out.stdout[-4000:], out.stderr[-4000:])
        return out

    build = run("ansible-galaxy", "collection", "build", "--output-path", str(base / "dist"), ROOT)
    tarballs = glob.glob(str(base / "dist" / "healthbutler-recovery-*.tar.gz"))
    assert len(tarballs) == 1, build.stdout
    run("ansible-galaxy", "collection", "install", tarballs[0], "-p", str(base / "collections"))
    path = os.path.join(str(base / "collections"), *INSTALLED)
    assert os.path.isfile(os.path.join(path, "MANIFEST.json"))
    assert not glob.glob(str(work / "*.cfg"))
    return {"run": run, "path": path, "tarball": tarballs[0], "work": work, "base": base}


def test_tarball_ships_the_collection_and_not_the_dev_tooling(installed):
    with tarfile.open(installed["tarball"]) as tar:
        names = set(tar.getnames())
    for shipped in ("playbooks/recover_db.yml", "playbooks/recover-db.yml", "roles/hb/meta/argument_specs.yml",
                    "plugins/modules/diagnose.py", "plugins/callback/incident_timeline.py", "meta/runtime.yml",
                    "LICENSE", "README.md"):
        assert shipped in names, shipped
    assert [p for p in DEV_TOOLING if p in names] == []
    assert not [n for n in names if n.startswith(("roles/sandbox", "roles/staging_fleet", "tests/", "scripts/", ".venv",
                                                  ".tools"))]


@pytest.mark.parametrize("kind,names", [
    ("module", plugin_names("modules")),
    ("callback", plugin_names("callback")),
    ("filter", documented_filters()),
    ("role", sorted(r for r in os.listdir(os.path.join(ROOT, "roles")) if r not in DEV_ONLY_ROLES)),
])
def test_ansible_doc_renders_every_plugin_from_the_installed_collection(installed, kind, names):
    assert names
    out = installed["run"]("ansible-doc", "-t", kind, *["healthbutler.recovery." + n for n in names])
    missing = [n for n in names if "healthbutler.recovery." + n not in out.stdout]
    assert missing == [], out.stderr[-3000:]
    assert "ERROR" not in out.stderr and "[WARNING]" not in out.stderr, out.stderr[-3000:]
    if kind == "role":
        assert "hb_pg_data_dir" in out.stdout  # the site model's declaration is documented


def test_every_playbook_passes_syntax_check_by_fqcn(installed):
    names = fqcn_playbooks()
    assert {"recover_db", "verify_backups", "diagnose"} <= set(names)
    out = installed["run"]("ansible-playbook", "-i", "localhost,", "--syntax-check",
                           *["healthbutler.recovery." + n for n in names])
    for name in names:  # resolved inside the installed copy, not the checkout
        assert "playbook: %s/playbooks/%s.yml" % (installed["path"], name) in out.stdout, out.stdout
    aliases = sorted(glob.glob(os.path.join(installed["path"], "playbooks", "*-*.yml")))
    assert len(aliases) == 9
    installed["run"]("ansible-playbook", "-i", "localhost,", "--syntax-check", *aliases)


def test_a_play_missing_a_required_site_variable_fails_at_the_start_naming_it(installed):
    inventory = installed["base"] / "partial.yml"
    inventory.write_text(json.dumps({"all": {"children": {"app": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3",
        "hb_environment": "test", "hb_run_root": str(installed["base"] / "runs"),
        "hb_app_dir": "/nonexistent/app", "hb_pm2_home": "/nonexistent/pm2",
        "hb_backup_dir": "/nonexistent/backups", "hb_wal_archive_dir": "/nonexistent/wal"}}}}}}))
    out = installed["run"]("ansible-playbook", "-i", str(inventory), "healthbutler.recovery.restart_app",
                           check=False)
    assert out.returncode != 0
    assert "missing required arguments: hb_pg_data_dir" in out.stdout, out.stdout[-3000:]
    tasks = [line for line in out.stdout.splitlines() if line.startswith("TASK [")]
    assert len(tasks) == 1 and "healthbutler.recovery.hb : Validating arguments" in tasks[0], tasks


def test_diagnose_runs_against_the_sandbox_with_the_timeline_enabled(installed, sandbox, tmp_path):
    sandbox.ensure_healthy()
    sandbox.flush_app_logs()  # traces of faults earlier tests injected (a restore restarts PostgreSQL)
    made = ensure_backup(sandbox)
    run_dir = tmp_path / "diagnose"
    try:
        out = installed["run"]("ansible-playbook", "-i", INVENTORY, "healthbutler.recovery.diagnose",
                               "-e", json.dumps({"diagnose_run_dir": str(run_dir),
                                                 # the shared machine's load is not under test here
                                                 "diagnose_thresholds": {"cpu_percent": 100, "db_round_trip_s": 5}}),
                               extra_env={"ANSIBLE_CALLBACKS_ENABLED": "healthbutler.recovery.incident_timeline",
                                          "HB_RUN_DIR": str(tmp_path / "timeline")})
    finally:
        if made:
            os.remove(made)
    with open(run_dir / "diagnosis.json", encoding="utf-8") as fh:
        report = json.load(fh)
    assert report["classification"]["healthy"] is True, report["classification"]["findings"]
    assert report["facts"]["localhost"]["app"]["process"]["status"] == "online"
    assert "healthy: no finding" in out.stdout
    with open(tmp_path / "timeline" / "timeline.jsonl", encoding="utf-8") as fh:
        events = [json.loads(line) for line in fh]
    assert any("Gather what this host can tell" in (e.get("task") or "") for e in events)


def test_recover_db_check_or_preflight_tag_from_tmp_prints_the_plan_and_changes_nothing(installed, sandbox):
    sandbox.ensure_healthy()
    dump = h.make_dump(sandbox)
    try:
        before = (h.table_counts(sandbox), sandbox.psql("SELECT string_agg(datname, ',' ORDER BY datname) "
                                                        "FROM pg_database"), h.data_dir_fingerprint(sandbox))
        out = installed["run"]("ansible-playbook", "-i", INVENTORY, "healthbutler.recovery.recover_db", "--check",
                               "-e", "recover_mode=dump", "-e", "dump=" + os.path.basename(dump))
        tagged = installed["run"]("ansible-playbook", "-i", INVENTORY, "healthbutler.recovery.recover_db",
                                  "--tags", "preflight", "-e", "recover_mode=dump",
                                  "-e", "dump=" + os.path.basename(dump))
        after = (h.table_counts(sandbox), sandbox.psql("SELECT string_agg(datname, ',' ORDER BY datname) "
                                                       "FROM pg_database"), h.data_dir_fingerprint(sandbox))
    finally:
        for path in glob.glob(dump + "*"):
            os.remove(path)
    assert "dump: %s" % dump in out.stdout or "dump: %s" % os.path.basename(dump) in out.stdout, out.stdout[-3000:]
    assert "strategy: beside" in out.stdout and "preserved: the current database as" in out.stdout
    assert " changed=0 " in out.stdout.split("PLAY RECAP")[-1]
    # --tags preflight, without --check: the same plan, then the run stops before its first change.
    assert "strategy: beside" in tagged.stdout and "Put the app in maintenance mode" not in tagged.stdout
    assert " changed=0 " in tagged.stdout.split("PLAY RECAP")[-1]
    assert after == before
    assert not os.path.exists(sandbox["hb_app_maintenance_flag"])
