"""env_restore and uploads_restore modules on real temporary files: check mode, kept copies, no values."""

import json
import os
import stat
from pathlib import Path

from module_helpers import run_module

from ansible_collections.healthbutler.recovery.plugins.modules import env_restore, uploads_restore

LIVE_SECRET, BACKUP_SECRET = "live-secret-value-123456", "backup-secret-value-654321"


def write(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)


def test_env_restore_check_mode_then_restore(tmp_path, monkeypatch):
    live, backup = tmp_path / ".env", tmp_path / "env"
    write(live, "PORT=3000\nJWT_SECRET=%s\nEXTRA=1\n" % LIVE_SECRET, 0o644)
    write(backup, "PORT=3000\nJWT_SECRET=%s\n" % BACKUP_SECRET)
    args = {"src": str(backup), "dest": str(live)}

    failed, res = run_module(env_restore, args, monkeypatch, check_mode=True, diff=True)
    assert not failed and res["changed"] and res["restart_needed"] and res["previous"] is None
    assert res["differences"]["changed"] == ["JWT_SECRET"] and res["differences"]["removed"] == ["EXTRA"]
    assert LIVE_SECRET in live.read_text()
    assert sorted(os.listdir(tmp_path)) == [".env", "env"]
    text = json.dumps(res)
    assert LIVE_SECRET not in text and BACKUP_SECRET not in text and "3000" not in text

    failed, res = run_module(env_restore, args, monkeypatch)
    assert not failed and res["changed"] and res["mode"] == "0600"
    assert live.read_text() == backup.read_text() and stat.S_IMODE(os.stat(live).st_mode) == 0o600
    assert LIVE_SECRET in Path(res["previous"]).read_text(encoding="utf-8")
    assert stat.S_IMODE(os.stat(res["previous"]).st_mode) == 0o644
    assert LIVE_SECRET not in json.dumps(res) and BACKUP_SECRET not in json.dumps(res)

    failed, res = run_module(env_restore, args, monkeypatch)
    assert not failed and not res["changed"] and not res["restart_needed"]


def test_env_restore_only_comments_differ_needs_no_restart(tmp_path, monkeypatch):
    live, backup = tmp_path / ".env", tmp_path / "env"
    write(live, "A=1\n")
    write(backup, "# restored\nA=1\n")
    failed, res = run_module(env_restore, {"src": str(backup), "dest": str(live)}, monkeypatch)
    assert not failed and res["changed"] and not res["restart_needed"]


def test_env_restore_validates_inputs(tmp_path, monkeypatch):
    live = tmp_path / ".env"
    write(live, "A=1\n")
    failed, res = run_module(env_restore, {"src": str(tmp_path / "missing"), "dest": str(live)}, monkeypatch)
    assert failed and "missing does not exist" in res["msg"]
    failed, res = run_module(env_restore, {"src": str(live), "dest": str(live), "owner": "no-such-user-hb"},
                             monkeypatch)
    assert failed and "owner 'no-such-user-hb' does not exist" in res["msg"]


def test_uploads_restore_check_mode_then_restore(tmp_path, monkeypatch):
    live, backup = tmp_path / "uploads", tmp_path / "backup"
    live.mkdir()
    backup.mkdir()
    (backup / "a.jpg").write_bytes(b"original")
    (live / "a.jpg").write_bytes(b"damaged!")
    (live / "later.jpg").write_bytes(b"created after the backup")
    os.chown(backup / "a.jpg", 65534, 65534)  # the backup's owner (postgres on real hosts), not the app's
    args = {"src": str(backup), "dest": str(live)}

    failed, res = run_module(uploads_restore, args, monkeypatch, check_mode=True)
    assert not failed and res["changed"] and res["snapshot"] is None
    (line,) = [line for line in res["itemized"] if line.endswith(" a.jpg")]
    assert line.startswith(">fc")  # content differs (checksum), same size
    assert (live / "a.jpg").read_bytes() == b"damaged!" and sorted(os.listdir(tmp_path)) == ["backup", "uploads"]

    failed, res = run_module(uploads_restore, args, monkeypatch)
    assert not failed and res["changed"] and res["verified"]
    assert (live / "a.jpg").read_bytes() == b"original" and (live / "later.jpg").exists()
    assert os.stat(live / "a.jpg").st_uid == os.stat(live).st_uid  # the live directory's owner
    assert Path(res["snapshot"], "a.jpg").read_bytes() == b"damaged!"

    failed, res = run_module(uploads_restore, args, monkeypatch)
    assert not failed and not res["changed"] and res["snapshot"] is None


def test_uploads_restore_refuses_a_missing_backup(tmp_path, monkeypatch):
    failed, res = run_module(uploads_restore, {"src": str(tmp_path / "nope"), "dest": str(tmp_path)}, monkeypatch)
    assert failed and "does not exist" in res["msg"]


def test_uploads_restore_with_a_stamp_keeps_an_interrupted_runs_snapshot(tmp_path, monkeypatch):
    """A re-run with the first run's stamp finishes the rsync against its snapshot; a .partial one is retaken."""
    live, backup = tmp_path / "uploads", tmp_path / "backup"
    live.mkdir()
    backup.mkdir()
    (backup / "a.jpg").write_bytes(b"original")
    (backup / "b.jpg").write_bytes(b"original")
    (live / "a.jpg").write_bytes(b"damaged!")
    args = {"src": str(backup), "dest": str(live), "stamp": "S"}
    snap = tmp_path / "uploads.pre_restore_S"
    (tmp_path / "uploads.pre_restore_S.partial").mkdir()  # a copy killed half-way: not a snapshot

    failed, res = run_module(uploads_restore, args, monkeypatch)
    assert not failed and res["snapshot"] == str(snap) and not res["snapshot_kept"]
    assert sorted(os.listdir(tmp_path)) == ["backup", "uploads", "uploads.pre_restore_S"]
    (live / "b.jpg").unlink()  # the first run's rsync was cut short

    failed, res = run_module(uploads_restore, args, monkeypatch)
    assert not failed and res["changed"] and res["snapshot_kept"] and res["snapshot"] == str(snap)
    assert (live / "b.jpg").read_bytes() == b"original" and (snap / "a.jpg").read_bytes() == b"damaged!"
    failed, res = run_module(uploads_restore, args, monkeypatch)
    assert not failed and not res["changed"] and res["snapshot"] == str(snap)  # still named for the record


def test_env_restore_with_a_stamp_keeps_the_copy_and_still_asks_for_the_restart(tmp_path, monkeypatch):
    """The first run installed the backup and died before the restart: the re-run keeps its copy, asks again."""
    live, backup = tmp_path / ".env", tmp_path / "env"
    write(live, "JWT_SECRET=%s\n" % LIVE_SECRET)
    write(backup, "JWT_SECRET=%s\n" % BACKUP_SECRET)
    args = {"src": str(backup), "dest": str(live), "stamp": "S"}
    failed, first = run_module(env_restore, args, monkeypatch)
    assert not failed and first["previous"] == str(live) + ".pre_restore_S" and first["restart_needed"]

    failed, again = run_module(env_restore, args, monkeypatch)
    assert not failed and not again["changed"] and again["previous"] == first["previous"]
    assert again["restart_needed"] and again["differences"]["changed"] == ["JWT_SECRET"]
    assert LIVE_SECRET in Path(first["previous"]).read_text(encoding="utf-8")
    assert sorted(os.listdir(tmp_path)) == [".env", ".env.pre_restore_S", "env"]
