"""File restore on the sandbox: uploads deleted and changed, .env damaged; --check; kept copies."""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import stat
import subprocess
import time

import interrupt_helpers as ih
import pytest
from harness import run_playbook
from rollback_helpers import file_sha, tree_digest

from ansible_collections.healthbutler.recovery.plugins.module_utils import files_sync

FAKE_SECRET = "fake-damaged-jwt-5f0c1d2e3a4b"


def take_file_backup(box):
    """A file backup made by the backup role (what every full run does); returns its directory."""
    run = run_playbook("backup.yml", {"backup_mode": "files"})
    assert run.rc == 0, run.stdout[-3000:]
    root = os.path.join(box["hb_backup_dir"], "files")
    return os.path.join(root, sorted(n for n in os.listdir(root) if not n.startswith("."))[-1])


def shas(root):
    out = {}
    for base, _unused, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            out[os.path.relpath(path, root)] = file_sha(path)
    return out


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def damage(box):
    """Two uploads deleted, two changed, one created after the backup; a .env key changed, one added."""
    uploads, env = box["hb_app_uploads_dir"], box["hb_app_env_file"]
    with open(env, "rb") as fh:
        original_env = fh.read()
    os.unlink(os.path.join(uploads, "avatars", "user-03.jpg"))
    os.unlink(os.path.join(uploads, "reports", "report-04.txt"))
    with open(os.path.join(uploads, "avatars", "user-05.jpg"), "r+b") as fh:
        fh.write(b"\0" * 512)  # same size: only a content check notices
    with open(os.path.join(uploads, "reports", "report-06.txt"), "a", encoding="utf-8") as fh:
        fh.write("edited\n")
    with open(os.path.join(uploads, "avatars", "after-backup.jpg"), "wb") as fh:
        fh.write(b"uploaded after the backup")
    damaged_env = original_env.replace(("JWT_SECRET=" + box.secrets()[0]).encode(),
                                       ("JWT_SECRET=" + FAKE_SECRET).encode()) + b"FEATURE_FLAG=on\n"
    assert FAKE_SECRET.encode() in damaged_env
    with open(env, "wb") as fh:
        fh.write(damaged_env)
    os.chmod(env, 0o640)
    return damaged_env


@pytest.fixture
def damaged(healthy):
    """A file backup of the healthy state, then the live uploads and .env damaged; all put back after."""
    box = healthy
    uploads, env = box["hb_app_uploads_dir"], box["hb_app_env_file"]
    with open(env, "rb") as fh:
        original_env = fh.read()
    backup = take_file_backup(box)
    backed_up = shas(os.path.join(backup, "uploads"))
    try:
        assert backed_up == shas(uploads) and len(backed_up) >= 10
        assert file_sha(os.path.join(backup, "env")) == file_sha(env)
        yield {"box": box, "backup": backup, "backed_up": backed_up, "damaged_env": damage(box)}
    finally:
        if file_sha(env) != file_sha(os.path.join(backup, "env")) or mode(env) != 0o600:
            with open(env, "wb") as fh:
                fh.write(original_env)
            os.chmod(env, 0o600)
            box.pm2("restart", box["hb_app_name"])
        for path in glob.glob(env + ".pre_restore_*") + glob.glob(uploads + ".pre_restore_*"):
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
        if os.path.exists(os.path.join(uploads, "avatars", "after-backup.jpg")):
            os.unlink(os.path.join(uploads, "avatars", "after-backup.jpg"))
        if shas(uploads) != backed_up:  # a test that failed before its restore: put the uploads back by hand
            owner = os.stat(uploads)
            subprocess.run(["rsync", "-a", "--delete", "--chown=%d:%d" % (owner.st_uid, owner.st_gid),
                            os.path.join(backup, "uploads") + "/", uploads + "/"], check=True)
        shutil.rmtree(os.path.dirname(backup))
        for path in glob.glob(os.path.join(box["hb_run_root"], "locks", "restore-files.lock")):
            os.unlink(path)


def test_restore_uploads_and_env(damaged):
    box, backup, backed_up = damaged["box"], damaged["backup"], damaged["backed_up"]
    damaged_env = damaged["damaged_env"]
    uploads, env, app = box["hb_app_uploads_dir"], box["hb_app_env_file"], box["hb_app_dir"]
    secrets = box.secrets()
    assert mode(os.path.join(backup, "env")) == 0o600
    status, evidence = files_sync.judge_file_backup(
        {"name": os.path.basename(backup), "path": backup, "time_ts": time.time()}, time.time(), 3600)
    assert status == "OK", evidence
    # owned by the backup tree's owner, so verification and retention (run as postgres) can read and prune it
    assert pwd.getpwuid(os.stat(os.path.join(backup, "uploads", "avatars", "user-01.jpg")).st_uid).pw_name \
        == box["hb_pg_os_user"]
    # --check: the plan is shown, nothing changes in the app repository, the uploads or .env
    before = (tree_digest(app), tree_digest(uploads), file_sha(env), mode(env))
    check = run_playbook("restore_files.yml", check=True)
    assert check.rc == 0, check.stdout[-3000:]
    itemized = check.task_results("Plan the uploads restore")[0]["itemized"]
    assert {">f+++++++++ avatars/user-03.jpg", ">f+++++++++ reports/report-04.txt"} <= set(itemized)
    assert any(line.endswith(" avatars/user-05.jpg") for line in itemized)
    differences = check.task_results("Plan the .env restore")[0]["differences"]
    assert differences["changed"] == ["JWT_SECRET"] and differences["removed"] == ["FEATURE_FLAG"]
    assert (tree_digest(app), tree_digest(uploads), file_sha(env), mode(env)) == before
    assert not glob.glob(env + ".pre_restore_*") and not glob.glob(uploads + ".pre_restore_*")
    # --tags preflight: the plan without check mode, and still nothing changes
    tagged = run_playbook("restore_files.yml", tags="preflight")
    assert tagged.rc == 0, tagged.stdout[-3000:]
    assert "plan only (--tags preflight)" in tagged.task_results("Show the plan")[0]["msg"][-1]
    assert tagged.task_results("Restore the uploads") == []
    assert (tree_digest(app), tree_digest(uploads), file_sha(env), mode(env)) == before
    assert not glob.glob(env + ".pre_restore_*") and not glob.glob(uploads + ".pre_restore_*")

    pid = box.pm2_process()["pid"]
    run = run_playbook("restore_files.yml")
    assert run.rc == 0, run.stdout[-3000:]

    # uploads: byte for byte, files created after the backup kept, the snapshot holds the damaged state
    live = shas(uploads)
    assert {k: live.get(k) for k in backed_up} == backed_up
    assert "avatars/after-backup.jpg" in live
    snapshot = run.task_results("Restore the uploads")[0]["snapshot"]
    assert snapshot == glob.glob(uploads + ".pre_restore_*")[0]
    snap = shas(snapshot)
    assert "avatars/user-03.jpg" not in snap and "avatars/after-backup.jpg" in snap
    assert snap["avatars/user-05.jpg"] != backed_up["avatars/user-05.jpg"]

    # .env: restored with 0600, the previous file kept with its mode, app restarted (keys differed)
    assert file_sha(env) == file_sha(os.path.join(backup, "env")) and mode(env) == 0o600
    (previous,) = glob.glob(env + ".pre_restore_*")
    with open(previous, "rb") as fh:
        assert fh.read() == damaged_env
    assert mode(previous) == 0o640
    box.wait_health(200)
    assert box.pm2_process()["pid"] != pid

    # no secret value anywhere in what the runs printed or returned
    record = check.stdout + run.stdout + json.dumps(check.events) + json.dumps(run.events)
    for value in secrets + [FAKE_SECRET]:
        assert value not in record

    # a second run finds nothing to do and does not restart the app
    pid = box.pm2_process()["pid"]
    again = run_playbook("restore_files.yml")
    assert again.rc == 0 and again.changed == 0, again.stdout[-3000:]
    assert box.pm2_process()["pid"] == pid


def kept_copies(box):
    return sorted(glob.glob(box["hb_app_uploads_dir"] + ".pre_restore_*")
                  + glob.glob(box["hb_app_env_file"] + ".pre_restore_*"))


def killed_after_the_uploads(box):
    """restore_files.yml with its controller SIGKILLed once the uploads are restored (the .env maybe not)."""
    lock_dir = os.path.join(box["hb_run_root"], "locks")
    record = ih.killed_at("restore_files.yml", {}, lock_dir, "restore-files", "uploads")
    assert kept_copies(box)[0] == box["hb_app_uploads_dir"] + ".pre_restore_" + record["stamp"]
    return record


def closed(box, record):
    assert ih.lock(os.path.join(box["hb_run_root"], "locks"), "restore-files") is None
    return ih.read_json(os.path.join(box["hb_run_root"], "restore-files", "%s-run" % record["stamp"], "run.json"))


def test_a_restore_killed_mid_run_is_finished_by_the_rerun_with_one_snapshot(damaged):
    box, backup, damaged_env = damaged["box"], damaged["backup"], damaged["damaged_env"]
    uploads, env = box["hb_app_uploads_dir"], box["hb_app_env_file"]
    record = killed_after_the_uploads(box)
    stamp, killed_at = record["stamp"], time.time()

    rerun = run_playbook("restore_files.yml")
    assert rerun.rc == 0, rerun.stdout[-4000:]
    assert "interrupted restore-files %s" % stamp in rerun.stdout
    live = shas(uploads)
    assert {k: live.get(k) for k in damaged["backed_up"]} == damaged["backed_up"]
    assert "avatars/after-backup.jpg" in live
    assert file_sha(env) == file_sha(os.path.join(backup, "env")) and mode(env) == 0o600
    # one snapshot and one kept .env for the incident, both holding the damaged state, named by the first run
    assert kept_copies(box) == sorted([uploads + ".pre_restore_" + stamp, env + ".pre_restore_" + stamp])
    assert "avatars/user-03.jpg" not in shas(uploads + ".pre_restore_" + stamp)
    with open(env + ".pre_restore_" + stamp, "rb") as fh:
        assert fh.read() == damaged_env
    # the app runs on the restored .env: restarted after the interruption, and healthy
    box.wait_health(200)
    assert box.pm2_process()["pm2_env"]["pm_uptime"] / 1000 > killed_at
    assert closed(box, record)["status"] == "ok"


def test_an_interrupted_restore_is_undone_by_abort(damaged):
    box, damaged_env = damaged["box"], damaged["damaged_env"]
    uploads, env = box["hb_app_uploads_dir"], box["hb_app_env_file"]
    before = shas(uploads)
    record = killed_after_the_uploads(box)
    assert shas(uploads) != before  # the killed run did restore files

    undo = run_playbook("restore_files.yml", {"abort": record["stamp"]})
    assert undo.rc == 0, undo.stdout[-4000:]
    assert shas(uploads) == before
    with open(env, "rb") as fh:
        assert fh.read() == damaged_env
    box.wait_health(200)
    assert closed(box, record)["status"] == "aborted"
    again = run_playbook("restore_files.yml", {"abort": record["stamp"]}, check=True)
    assert again.rc != 0 and "no interrupted restore-files run holds this host" in again.stdout
