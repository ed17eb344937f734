"""Rollback planning: target tag choice, migrations between tags, dirty-tree refusal."""

import json
import os

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import release

HEAD = "c" * 40
V100, V110, V120 = "a" * 40, "b" * 40, HEAD
TAGS = [{"name": "v1.0.0", "commit": V100}, {"name": "v1.1.0", "commit": V110},
        {"name": "v1.2.0", "commit": V120}]


def repo_rules(runner, head=HEAD, branch="main", tags_out=None, merged="v1.0.0\nv1.1.0\nv1.2.0\n",
               status="", migrations=None):
    """Script a fake git for one repository."""
    migrations = migrations or {}
    runner.add(r"rev-parse --verify HEAD", stdout=head + "\n")
    runner.add(r"symbolic-ref", rc=0 if branch else 1, stdout=(branch or "") + "\n")
    runner.add(r"for-each-ref", stdout=tags_out if tags_out is not None else
               "v1.0.0\x00%s\x00%s\nv1.1.0\x00%s\x00%s\nv1.2.0\x00%s\x00\n" % ("1" * 40, V100, "2" * 40, V110, V120))
    runner.add(r"tag --merged", stdout=merged)
    for commit, names in migrations.items():
        runner.add(r"ls-tree -d --name-only %s" % commit,
                   stdout="".join("prisma/migrations/%s\n" % n for n in names))
    runner.add(r"ls-tree", stdout="")
    runner.add(r"status --porcelain", stdout=status)
    return runner


@pytest.mark.parametrize("tags, merged, explicit, expected", [
    (TAGS, {"v1.0.0", "v1.1.0", "v1.2.0"}, None, "v1.1.0"),          # HEAD is v1.2.0
    (TAGS, {"v1.0.0", "v1.1.0", "v1.2.0"}, "v1.0.0", "v1.0.0"),      # explicit wins
    # HEAD is a hotfix after v1.2.0 (no tag at HEAD): newest stable ancestor
    ([dict(t, commit="d" * 40) if t["name"] == "v1.2.0" else t for t in TAGS],
     {"v1.0.0", "v1.1.0", "v1.2.0"}, None, "v1.2.0"),
    # release candidates and other tags never match the stable pattern
    (TAGS + [{"name": "v1.1.5-rc1", "commit": "e" * 40}, {"name": "deploy-x", "commit": "f" * 40}],
     {"v1.0.0", "v1.1.0", "v1.2.0", "v1.1.5-rc1"}, None, "v1.1.0"),
    # versions compare numerically, not as text
    ([{"name": "v1.9.0", "commit": "9" * 40}, {"name": "v1.10.0", "commit": "1" * 40},
      {"name": "v1.11.0", "commit": HEAD}], {"v1.9.0", "v1.10.0", "v1.11.0"}, None, "v1.10.0"),
])
def test_select_target(tags, merged, explicit, expected):
    assert release.select_target(tags, HEAD, merged, explicit=explicit)["name"] == expected


def test_select_target_newer_tags_off_head_are_ignored():
    # v1.3.0 exists (another branch) but is newer than the current release: never a rollback target
    tags = TAGS + [{"name": "v1.3.0", "commit": "3" * 40}]
    assert release.select_target(tags, HEAD, {"v1.0.0", "v1.1.0", "v1.2.0"})["name"] == "v1.1.0"


def test_select_target_errors_name_the_known_tags():
    with pytest.raises(release.ReleaseError, match=r"tag 'v9.9.9' does not exist.*v1.2.0, v1.1.0, v1.0.0"):
        release.select_target(TAGS, HEAD, set(), explicit="v9.9.9")
    with pytest.raises(release.ReleaseError, match="no stable tag"):
        release.select_target([{"name": "v1.0.0", "commit": HEAD}], HEAD, {"v1.0.0"})
    with pytest.raises(release.ReleaseError, match="not a valid regular expression"):
        release.select_target(TAGS, HEAD, set(), pattern="v(")


def test_current_release():
    merged = {"v1.0.0", "v1.1.0", "v1.2.0"}
    assert release.current_release(TAGS, HEAD, merged) == "v1.2.0"
    assert release.current_release(TAGS, "d" * 40, merged) == "v1.2.0+"
    assert release.current_release([], "d" * 40, set()) is None


def test_parse_porcelain_z_handles_renames_spaces_and_untracked():
    out = " M src/server.js\x00R  new name.js\x00old name.js\x00?? notes.txt\x00"
    assert release.parse_porcelain_z(out) == [
        {"status": " M", "path": "src/server.js"},
        {"status": "R ", "path": "new name.js", "from": "old name.js"},
        {"status": "??", "path": "notes.txt"}]
    assert release.parse_porcelain_z("") == []


def test_migrations_newest_first():
    current = {"20260101_init", "20261101_add_sleep", "20261120_add_index"}
    assert release.migrations_to_roll_back(current, {"20260101_init"}) == [
        "20261120_add_index", "20261101_add_sleep"]
    assert release.migrations_to_roll_back({"a"}, {"a", "b"}) == []


def test_plan_from_git(fake_runner):
    repo_rules(fake_runner, migrations={HEAD: ["20260101_init", "20261101_add_sleep"],
                                        V110: ["20260101_init"]})
    plan = release.plan(fake_runner, "git", "/app")
    assert plan["from"] == {"commit": HEAD, "short": HEAD[:12], "branch": "main", "release": "v1.2.0"}
    assert plan["to"] == {"tag": "v1.1.0", "commit": V110, "short": V110[:12]}
    assert plan["migrations"] == ["20261101_add_sleep"]
    assert plan["noop"] is False and plan["dirty"] == []
    assert plan["stable_tags"] == ["v1.2.0", "v1.1.0", "v1.0.0"]
    # annotated tags are peeled to their commit; every git call names the repository
    assert all(c["argv"][:3] == ["git", "-C", "/app"] for c in fake_runner.calls)


def test_plan_refuses_dirty_tree_listing_files(fake_runner):
    repo_rules(fake_runner, status=" M src/server.js\x00?? debug.log\x00")
    plan = release.plan(fake_runner, "git", "/app")
    with pytest.raises(release.ReleaseError) as exc:
        release.refuse_dirty(plan)
    assert "2 changed file(s)" in exc.value.msg
    assert "src/server.js" in exc.value.msg and "debug.log" in exc.value.msg
    assert exc.value.details["dirty_files"] == [" M src/server.js", "?? debug.log"]


def test_the_collections_own_kept_copies_do_not_make_the_tree_dirty(fake_runner):
    """restore_files' snapshot and kept .env sit in the app directory; an untracked look-alike still counts."""
    repo_rules(fake_runner, status="?? uploads.pre_restore_20261202T155000Z/avatars/a.jpg\x00"
                                   "?? .env.pre_restore_20261202T155000Z\x00"
                                   "?? uploads.pre_restore_20261202T155000Z.partial/b.jpg\x00"
                                   "?? notes.pre_restore_draft.txt\x00 M .env.pre_restore_20261202T155000Z\x00")
    dirty = release.dirty_files(fake_runner, "git", "/app")
    assert [e["path"] for e in dirty] == ["notes.pre_restore_draft.txt", ".env.pre_restore_20261202T155000Z"]


def test_untracked_files_can_be_ignored(fake_runner):
    repo_rules(fake_runner)
    release.dirty_files(fake_runner, "git", "/app", include_untracked=False)
    assert "--untracked-files=no" in fake_runner.argv_lines()[-1]


def test_fetch_without_remote_is_skipped_with_a_message(fake_runner):
    fake_runner.add(r"git -C /app remote\s*$", stdout="")
    out = release.fetch(fake_runner, "git", "/app")
    assert out["fetched"] is False and "no git remote" in out["msg"] and not out["changed"]
    assert not any("fetch" in line for line in fake_runner.argv_lines())


def test_fetch_from_origin(fake_runner):
    fake_runner.add(r"remote\s*$", stdout="backup\norigin\n")
    fake_runner.add(r"fetch --tags --prune origin", stderr=" * [new tag] v1.3.0 -> v1.3.0\n")
    out = release.fetch(fake_runner, "git", "/app")
    assert out["fetched"] and out["remote"] == "origin" and out["changed"]
    with pytest.raises(release.ReleaseError, match="remote 'upstream' is not configured"):
        release.fetch(fake_runner, "git", "/app", "upstream")


def test_checkout_refuses_dirty_tree_without_checking_out(fake_runner):
    fake_runner.add(r"status --porcelain", stdout=" M package.json\x00")
    with pytest.raises(release.ReleaseError, match="package.json"):
        release.checkout(fake_runner, "git", "/app", V110)
    assert not any(" checkout " in line for line in fake_runner.argv_lines())


def test_preserve_and_reroll_put_the_build_back(tmp_path):
    """Real files: the preserved build output comes back, the failed one is kept aside."""
    from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import SubprocessRunner

    repo = tmp_path / "app"
    (repo / "dist").mkdir(parents=True)
    (repo / "dist" / "server.js").write_text("v1.2.0 build")
    (repo / "node_modules" / "pg").mkdir(parents=True)
    (repo / "node_modules" / "pg" / "index.js").write_text("pg")
    runner = SubprocessRunner()
    record = release.preserve(runner, str(repo), str(tmp_path / "state"), {"commit": HEAD, "branch": "main"},
                              "v1.1.0", [".next", "dist"], ["node_modules"])
    assert [(p["path"], p["method"]) for p in record["preserved"]] == [("dist", "copy"),
                                                                       ("node_modules", "hardlink")]
    with open(record["record"], encoding="utf-8") as fh:
        assert json.load(fh)["commit"] == HEAD
    # the target's build replaces dist and node_modules
    (repo / "dist" / "server.js").write_text("v1.1.0 build")
    (repo / "node_modules" / "pg" / "index.js").unlink()

    class Git(SubprocessRunner):
        """git answers: clean tree, branch main at HEAD; everything else runs for real."""

        def _run(self, argv, env, data, cwd, timeout):
            if argv[0] == "git":
                self.calls.append(argv)
                if "rev-parse" in argv:
                    return super()._run(["echo", HEAD], env, data, cwd, timeout)
                return super()._run(["true"], env, data, cwd, timeout)
            return super()._run(argv, env, data, cwd, timeout)

    git = Git()
    git.calls = []
    steps = release.reroll(git, "git", str(repo), release.load_record(record["record"]))
    assert (repo / "dist" / "server.js").read_text() == "v1.2.0 build"
    assert (repo / "node_modules" / "pg" / "index.js").read_text() == "pg"
    assert (tmp_path / "state" / record["time"] / "failed" / "dist" / "server.js").read_text() == "v1.1.0 build"
    assert ["git", "-C", str(repo), "-c", "advice.detachedHead=false", "checkout", "--quiet", "main"] in git.calls
    assert steps[-1] == "put back node_modules"
    assert not os.path.exists(os.path.join(record["dir"], "preserved", "dist"))


def test_load_record_error_names_the_file(tmp_path):
    with pytest.raises(release.ReleaseError, match="record.json cannot be read"):
        release.load_record(str(tmp_path / "record.json"))


# -- the app_release module on a real throw-away repository ------------------------------------

def make_repo(path):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-C", str(path)] + list(args), check=True, capture_output=True)

    path.mkdir()
    git("init", "-q", "-b", "main")
    git("config", "user.email", "t@example.invalid")
    git("config", "user.name", "t")
    (path / ".gitignore").write_text("dist/\n")
    for tag, migration in (("v1.0.0", "20260101_init"), ("v1.1.0", None), ("v1.2.0", "20261101_add_sleep")):
        (path / "VERSION").write_text(tag)
        if migration:
            (path / "prisma" / "migrations" / migration).mkdir(parents=True)
            (path / "prisma" / "migrations" / migration / "migration.sql").write_text("SELECT 1;")
        git("add", "-A")
        git("commit", "-q", "-m", tag)
        git("tag", "-a", tag, "-m", tag)
    (path / "dist").mkdir()
    (path / "dist" / "server.js").write_text("built v1.2.0")
    return git


def test_module_plans_and_refuses_dirty_tree(tmp_path, monkeypatch):
    from module_helpers import run_module

    from ansible_collections.healthbutler.recovery.plugins.modules import app_release

    repo = tmp_path / "app"
    make_repo(repo)
    failed, res = run_module(app_release, {"path": str(repo)}, monkeypatch)
    assert not failed and not res["changed"]
    assert res["plan"]["from"]["release"] == "v1.2.0" and res["plan"]["to"]["tag"] == "v1.1.0"
    assert res["plan"]["migrations"] == ["20261101_add_sleep"]
    assert res["fetch"]["fetched"] is False and "no git remote" in res["fetch"]["msg"]

    (repo / "VERSION").write_text("edited on the server")
    (repo / "dist" / "ignored.js").write_text("git-ignored: not dirty")
    failed, res = run_module(app_release, {"path": str(repo)}, monkeypatch)
    assert failed and "1 changed file(s)" in res["msg"] and " M VERSION" in res["msg"]
    failed, res = run_module(app_release, {"path": str(repo), "state": "checked_out", "tag": "v1.1.0"},
                             monkeypatch)
    assert failed and "VERSION" in res["msg"]
    assert (repo / "VERSION").read_text() == "edited on the server"


def test_module_checkout_check_mode_and_unknown_tag(tmp_path, monkeypatch):
    from module_helpers import run_module

    from ansible_collections.healthbutler.recovery.plugins.modules import app_release

    repo = tmp_path / "app"
    make_repo(repo)
    args = {"path": str(repo), "state": "checked_out", "tag": "v1.0.0"}
    failed, res = run_module(app_release, args, monkeypatch, check_mode=True)
    assert not failed and res["changed"] and (repo / "VERSION").read_text() == "v1.2.0"
    failed, res = run_module(app_release, args, monkeypatch)
    assert not failed and res["changed"] and (repo / "VERSION").read_text() == "v1.0.0"
    failed, res = run_module(app_release, args, monkeypatch)
    assert not failed and not res["changed"]
    failed, res = run_module(app_release, dict(args, tag="v9"), monkeypatch)
    assert failed and "known tags: v1.0.0, v1.1.0, v1.2.0" in res["msg"]
    failed, res = run_module(app_release, {"path": str(tmp_path)}, monkeypatch)
    assert failed and "not a git working tree" in res["msg"]
