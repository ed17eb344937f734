"""rsync itemize parsing, argv, backup selection and snapshots."""

import os
from pathlib import Path

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import files_sync
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError, SubprocessRunner

ITEMIZED = """*deleting   extra.txt
*deleting   old/
.d..t...... ./
cd+++++++++ new dir/
cL+++++++++ current -> avatars/user-01.jpg
>f+++++++++ new dir/a file.jpg
>fcs....... reports/report-07.txt
>f..t...... avatars/user-02.jpg
.f...p..... avatars/user-03.jpg
hf+++++++++ avatars/copy.jpg => avatars/user-01.jpg

sent 1,234 bytes  received 56 bytes  2,580.00 bytes/sec
"""


def test_parse_itemize():
    items = files_sync.parse_itemize(ITEMIZED)
    assert [(i["action"], i["kind"], i["path"]) for i in items] == [
        ("deleted", "file", "extra.txt"),
        ("deleted", "dir", "old/"),
        ("attributes", "dir", "./"),
        ("created", "dir", "new dir/"),
        ("created", "symlink", "current"),
        ("created", "file", "new dir/a file.jpg"),
        ("updated", "file", "reports/report-07.txt"),
        ("updated", "file", "avatars/user-02.jpg"),
        ("attributes", "file", "avatars/user-03.jpg"),
        ("created", "file", "avatars/copy.jpg"),
    ]
    assert files_sync.summarize(items) == {"created": 4, "updated": 2, "changed": 0, "deleted": 2,
                                           "attributes": 2}
    assert len(files_sync.content_changes(items)) == 8
    assert files_sync.parse_itemize("") == []


@pytest.mark.parametrize("kwargs, flags", [
    ({}, []),
    ({"dry_run": True, "checksum": True}, ["--dry-run", "--checksum"]),
    ({"delete": True}, ["--delete"]),
    ({"link_dest": "/b/prev"}, ["--link-dest=/b/prev"]),
    ({"chown": "0:33"}, ["--chown=0:33"]),
])
def test_rsync_argv(kwargs, flags):
    argv = files_sync.rsync_argv("/backup/uploads", "/app/uploads/", **kwargs)
    assert argv[:4] == ["rsync", "-a", "--itemize-changes", "--out-format=%i %n%L"]
    assert sorted(argv[4:-2]) == sorted(flags)
    assert argv[-2:] == ["/backup/uploads/", "/app/uploads/"]  # contents, never the dir itself


def test_snapshot_path():
    assert files_sync.snapshot_path("/app/uploads/", "20261128T000000Z") == \
        "/app/uploads.pre_restore_20261128T000000Z"
    assert files_sync.snapshot_path("/app/uploads", "S", "/srv/snaps") == "/srv/snaps/uploads.pre_restore_S"


def test_snapshot_is_hard_linked_and_survives_a_restore(tmp_path):
    """Real cp/rsync: the snapshot shares inodes, and keeps old content after rsync replaces a file."""
    live, backup = tmp_path / "uploads", tmp_path / "backup"
    live.mkdir()
    backup.mkdir()
    (live / "a.jpg").write_bytes(b"damaged")
    (live / "new.txt").write_bytes(b"created after the backup")
    (backup / "a.jpg").write_bytes(b"original bytes")
    (backup / "gone.jpg").write_bytes(b"deleted since")
    runner = SubprocessRunner()
    snap = files_sync.snapshot(runner, str(live), files_sync.snapshot_path(str(live), "S"))
    assert os.stat(os.path.join(snap, "a.jpg")).st_ino == os.stat(live / "a.jpg").st_ino
    with pytest.raises(CommandError, match="already exists"):
        files_sync.snapshot(runner, str(live), snap)
    items, _unused = files_sync.sync(runner, str(backup), str(live), dry_run=True)
    assert {i["path"]: i["action"] for i in files_sync.content_changes(items)} == {
        "a.jpg": "updated", "gone.jpg": "created"}
    assert (live / "a.jpg").read_bytes() == b"damaged"  # dry run changed nothing
    files_sync.sync(runner, str(backup), str(live))
    assert (live / "a.jpg").read_bytes() == b"original bytes"
    assert (live / "new.txt").exists()  # extras kept without delete
    assert Path(snap, "a.jpg").read_bytes() == b"damaged"
    items, _unused = files_sync.sync(runner, str(backup), str(live), dry_run=True, delete=True)
    assert [(i["action"], i["path"]) for i in files_sync.content_changes(items)] == [("deleted", "new.txt")]


def file_backup(tmp_path, name="20261128T030000Z", env_mode=0o600, uploads=True, env=True):
    root = tmp_path / name
    root.mkdir()
    if uploads:
        (root / "uploads" / "avatars").mkdir(parents=True)
        (root / "uploads" / "avatars" / "a.jpg").write_bytes(b"x")
    if env:
        (root / "env").write_text("A=1\n")
        os.chmod(root / "env", env_mode)
    return {"kind": "files", "name": name, "path": str(root), "time_ts": 1000.0}


@pytest.mark.parametrize("kwargs, now, status, words", [
    ({}, 1000.0 + 3600, "OK", "1 upload file(s), env present"),
    ({}, 1000.0 + 26 * 3600, "FAILED", "26.0 h old (limit 25.0 h)"),
    ({"env_mode": 0o644}, 1000.0, "FAILED", "env mode 0644"),
    ({"env": False}, 1000.0, "FAILED", "env missing"),
    ({"uploads": False}, 1000.0, "FAILED", "uploads/ missing"),
])
def test_judge_file_backup(tmp_path, kwargs, now, status, words):
    got, evidence = files_sync.judge_file_backup(file_backup(tmp_path, **kwargs), now, 25 * 3600)
    assert got == status and words in evidence


def test_judge_file_backup_none():
    assert files_sync.judge_file_backup(None, 0, 1)[0] == "WARNING"


def test_judge_file_backup_reads_the_catalogue_time(tmp_path):
    entry = file_backup(tmp_path)
    del entry["time_ts"]
    entry["time"] = "2026-11-28T03:00:00Z"
    now = 1795834800.0 + 7200  # 2026-11-28T03:00:00Z + 2 h
    assert files_sync.judge_file_backup(entry, now, 3 * 3600)[0] == "OK"
    assert files_sync.judge_file_backup(entry, now, 3600)[0] == "FAILED"
