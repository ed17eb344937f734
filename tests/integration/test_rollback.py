"""Emergency rollback on the sandbox: a broken release, a dirty tree, a tag whose build fails."""

from __future__ import annotations

import json
import os

import interrupt_helpers as ih
import pytest
from harness import run_playbook
from rollback_helpers import (
    STABLE,
    build_and_restart,
    build_info,
    commit_release,
    git,
    head,
    reset_app,
    tag_commit,
    tree_digest,
)

BROKEN, BUILD_FAILS = "v1.2.0", "v1.1.1"
MIGRATION = "20261128120000_add_sleep_metrics"


@pytest.fixture
def broken_release(healthy, run_dir):
    """v1.2.0 (adds a migration, /health answers 500) committed on main, tagged and deployed."""
    reset_app(healthy)
    try:
        commit_release(healthy, BROKEN, {"HEALTH_BREAK": "sleep metrics crash"}, migrations=[MIGRATION])
        build_and_restart(healthy)
        healthy.wait_health(500)
        yield healthy
    finally:
        reset_app(healthy, extra_tags=(BROKEN, BUILD_FAILS))


def test_rollback_from_a_broken_release(broken_release, run_dir):
    box = broken_release
    app = box["hb_app_dir"]
    broken_commit = head(box)
    migration_log = os.path.join(run_dir, "migrations.log")
    extravars = {"rollback_migrate": True,
                 "rollback_migration_command": ["sh", "-c", 'printf "%s\\n" "$1" >> ' + migration_log, "migrate"]}

    # --check prints the plan (commit -> tag, migrations) and changes nothing in the app repository
    before = tree_digest(app)
    check = run_playbook("rollback.yml", extravars, check=True)
    assert check.rc == 0, check.stdout[-3000:]
    plan = check.task_results("Plan the rollback")[0]["plan"]
    assert plan["from"]["commit"] == broken_commit and plan["from"]["release"] == BROKEN
    assert plan["to"] == {"tag": STABLE, "commit": tag_commit(box, STABLE), "short": tag_commit(box, STABLE)[:12]}
    assert plan["migrations"] == [MIGRATION]
    shown = " ".join(check.task_results("Show the plan")[0]["msg"])
    assert "-> %s" % STABLE in shown and "no git remote configured" in shown and MIGRATION in shown
    assert tree_digest(app) == before and not os.path.exists(migration_log)
    # --tags preflight: the same plan, without check mode, and nothing changes either
    tagged = run_playbook("rollback.yml", extravars, tags="preflight")
    assert tagged.rc == 0, tagged.stdout[-3000:]
    assert tagged.task_results("Plan the rollback")[0]["plan"] == plan
    assert "plan only (--tags preflight)" in " ".join(tagged.task_results("Show the plan")[0]["msg"])
    assert tree_digest(app) == before and head(box) == broken_commit and rollback_journal(box) is None

    # a dirty working tree is refused, the changed files are listed, nothing changes
    with open(os.path.join(app, "src", "server.js"), "a", encoding="utf-8") as fh:
        fh.write("// hotfix typed on the server\n")
    with open(os.path.join(app, "notes.txt"), "w", encoding="utf-8") as fh:
        fh.write("untracked\n")
    dirty_before = tree_digest(app)
    refused = run_playbook("rollback.yml", extravars)
    assert refused.rc != 0
    assert "src/server.js" in refused.stdout and "notes.txt" in refused.stdout
    assert "nothing was changed" in refused.stdout
    assert tree_digest(app) == dirty_before and head(box) == broken_commit
    assert box.http("/health")[0] == 500
    git(box, "checkout", "-q", "--", "src/server.js")
    os.unlink(os.path.join(app, "notes.txt"))

    # the rollback brings v1.1.0 back, rolls the migration back, keeps the broken build for a re-roll forward
    run = run_playbook("rollback.yml", extravars)
    assert run.rc == 0, run.stdout[-4000:]
    status, body = box.wait_health(200)
    assert body["version"] == "1.1.0"
    assert head(box) == tag_commit(box, STABLE)
    assert build_info(box)["commit"] == tag_commit(box, STABLE)
    with open(migration_log, encoding="utf-8") as fh:
        assert fh.read().split() == [MIGRATION]
    record = run.task_results("Record the current commit")[0]["record"]
    assert record["commit"] == broken_commit and record["branch"] == "main"
    with open(os.path.join(record["dir"], "preserved", "dist", "BUILD_INFO.json"), encoding="utf-8") as fh:
        kept = json.load(fh)
    assert kept["commit"] == broken_commit and kept["healthBreak"]
    assert os.path.exists(os.path.join(record["dir"], "preserved", "node_modules", "pg", "package.json"))


def test_rollback_to_a_tag_whose_build_fails_rerolls(healthy):
    box = healthy
    reset_app(box)
    try:
        commit_release(box, BUILD_FAILS, {"BUILD_FAIL": "syntax error in sleep.ts"}, stay=False)
        serving = head(box)
        pid = box.pm2_process()["pid"]
        run = run_playbook("rollback.yml", {"rollback_tag": BUILD_FAILS})
        assert run.rc != 0
        assert "failed at 'Build the release'" in run.stdout and "syntax error in sleep.ts" in run.stdout
        assert "re-rolled to %s" % serving in run.stdout
        # back on the recorded commit, on its preserved build, branch restored, serving
        assert head(box) == serving and git(box, "symbolic-ref", "--short", "HEAD") == "main"
        assert git(box, "status", "--porcelain") == ""
        assert build_info(box)["commit"] == serving
        status, body = box.wait_health(200)
        assert body["version"] == "1.1.0"
        assert box.pm2_process()["pid"] != pid  # restarted on the recorded build
    finally:
        reset_app(box, extra_tags=(BUILD_FAILS,))


@pytest.mark.parametrize("playbook", ["rollback.yml", "restore_files.yml"])
def test_production_refused_without_confirm(playbook):
    """Against the production inventory nothing is attempted without -e confirm=<db host> (no host contacted)."""
    from harness import ROOT

    run = run_playbook(playbook, inventory=os.path.join(ROOT, "inventories", "production"))
    assert run.rc != 0
    message = " ".join(str(r.get("msg", "")) for r in run.task_results("Refuse the production group"))
    assert "refused: production-app-1 is in the production group and no confirm was given" in message, message
    assert "re-run with -e confirm=production-db-1" in message
    # Only the argument checks and the guard ran (they contact no host): no task reached the host.
    ok = [e["event_data"]["task"] for e in run.events if e.get("event") == "runner_on_ok"]
    guard = ("Validating arguments against arg spec", "Find the play's hosts in the production group", "Print the plan")
    assert ok and all(task.startswith(guard) for task in ok), ok


def rollback_journal(box):
    return ih.journal(os.path.join(box["hb_run_root"], "rollback", "locks"), "rollback")


def test_a_rollback_killed_after_its_migration_is_finished_by_the_rerun_without_repeating_it(broken_release,
                                                                                             run_dir):
    box = broken_release
    migration_log = os.path.join(run_dir, "migrations.log")
    extravars = {"rollback_migrate": True,
                 "rollback_migration_command": ["sh", "-c", 'printf "%s\\n" "$1" >> ' + migration_log, "migrate"]}
    records = os.path.join(box["hb_run_root"], "rollback")
    before = set(os.listdir(records)) if os.path.isdir(records) else set()
    stamp = ih.killed_at("rollback.yml", extravars, os.path.join(box["hb_run_root"], "rollback", "locks"), "rollback",
                         "migration %s" % MIGRATION, timeout=300)["stamp"]
    rerun = run_playbook("rollback.yml", extravars)
    assert rerun.rc == 0, rerun.stdout[-4000:]
    assert "interrupted rollback %s" % stamp in rerun.stdout
    assert box.wait_health(200)[1]["version"] == "1.1.0"
    assert head(box) == tag_commit(box, STABLE)
    with open(migration_log, encoding="utf-8") as fh:
        assert fh.read().split() == [MIGRATION]  # rolled back once, not again by the re-run
    new = sorted(set(os.listdir(records)) - before - {"locks"})
    assert [n for n in new if n.endswith("-run")] == ["%s-run" % stamp]
    assert len([n for n in new if not n.endswith("-run")]) == 1, new  # one preserved record for the incident
    assert rollback_journal(box) is None  # lock released
