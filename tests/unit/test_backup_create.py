"""Taking backups: dump sidecars, never overwriting, WAL bundles, offsite comparison."""

import json
import os
from datetime import timedelta

import pytest
from backup_fixtures import T0, make_base, make_incremental, make_wal

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_catalog as bc
from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_create as bk
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import Conn
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError


class FakeSession:
    def __init__(self, conn):
        self.snapshot, self.counts, self.version = "00000003-1", {"public.users": 3}, "15.18"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def writes_dump(argv, data):
    path = argv[argv.index("-f") + 1]
    with open(path, "wb") as fh:
        fh.write(b"PGDMP fake")
    return ""


def test_take_dump_writes_sidecars_and_uses_the_snapshot(tmp_path, fake_runner):
    fake_runner.add(r"pg_dump", 0, writes_dump)
    conn = Conn(host="/sock", port=5432, dbname="health_butler")
    result = bk.take_dump(fake_runner, conn, str(tmp_path), now=T0, session_factory=FakeSession)
    assert "--snapshot=00000003-1" in fake_runner.calls[0]["argv"]
    assert fake_runner.calls[0]["argv"][fake_runner.calls[0]["argv"].index("-f") + 1].endswith(".dump.partial")
    entry = bc.scan(str(tmp_path))["backups"][0]
    assert entry["name"] == "health_butler_20261128T030000Z.dump" and entry["checksum"]["state"] == "ok"
    assert entry["meta"]["tables"] == {"public.users": 3} and result["meta"]["size"] == 10
    assert sorted(os.listdir(tmp_path / "dumps")) == [
        "health_butler_20261128T030000Z.dump", "health_butler_20261128T030000Z.dump.json",
        "health_butler_20261128T030000Z.dump.sha256"]
    with pytest.raises(CommandError, match="refusing to overwrite"):
        bk.take_dump(fake_runner, conn, str(tmp_path), now=T0, session_factory=FakeSession)


def test_failed_dump_leaves_nothing(tmp_path, fake_runner):
    fake_runner.add(r"pg_dump", 1, "", "connection refused")
    with pytest.raises(CommandError):
        bk.take_dump(fake_runner, Conn(dbname="health_butler"), str(tmp_path), now=T0, session_factory=FakeSession)
    assert os.listdir(tmp_path / "dumps") == []


def test_publish_never_overwrites(tmp_path):
    (tmp_path / "a.partial").write_text("new")
    (tmp_path / "a").write_text("old")
    with pytest.raises(FileExistsError):
        bk.publish(str(tmp_path / "a.partial"), str(tmp_path / "a"))
    assert (tmp_path / "a").read_text() == "old"


def test_segments_to_ship_starts_after_the_last_bundle(tmp_path):
    root, wal = str(tmp_path / "b"), str(tmp_path / "w")
    make_wal(wal, 1, [1, 2, 3, 4], T0)
    assert bk.segments_to_ship(wal, root) == ["00000001000000000000000%d" % n for n in (1, 2, 3, 4)]
    make_base(root, T0, 2)
    assert bk.segments_to_ship(wal, root) == ["00000001000000000000000%d" % n for n in (2, 3, 4)]
    make_incremental(root, T0, wal, ["000000010000000000000001", "000000010000000000000002"])
    (tmp_path / "w" / "00000002.history").write_text("1\t0/4000000\tx\n")
    make_wal(wal, 2, [4, 5], T0 + timedelta(hours=1))
    assert bk.segments_to_ship(wal, root) == ["000000010000000000000003", "000000010000000000000004",
                                              "000000020000000000000004", "000000020000000000000005",
                                              "00000002.history"]


def test_offsite_differences_parses_itemized_changes(fake_runner):
    out = ("cd+++++++++ dumps/\n>f+++++++++ dumps/a.dump\n>fc.t...... dumps/b.dump\n.f..t...... dumps/c.dump\n")
    fake_runner.add(r"rsync .*--checksum --dry-run", 0, out)
    diffs = bk.offsite_differences(fake_runner, "/b", "host:/off", ["dumps/a.dump", "dumps/b.dump"])
    assert diffs == [{"path": "dumps/a.dump", "state": "missing"}, {"path": "dumps/b.dump", "state": "mismatch"}]
    call = fake_runner.calls[0]
    assert call["argv"][-2:] == ["/b/", "host:/off/"] and call["data"] == "dumps/a.dump\ndumps/b.dump\n"


def test_a_remote_shell_goes_to_every_rsync_as_one_argument(fake_runner, tmp_path):
    (tmp_path / "dumps").mkdir()
    fake_runner.add(r"rsync .*--ignore-existing", 0, ">f+++++++++ dumps/a.dump\n")
    fake_runner.add(r"rsync .*--checksum --dry-run", 0, "")
    rsh = "ssh -p 2222 -i /var/lib/postgresql/.ssh/offsite"
    result = bk.copy_offsite(fake_runner, str(tmp_path), "backup@offsite:/srv/off", rsh=rsh)
    assert result == {"copied": ["dumps/a.dump"], "differences": []}
    assert [c["argv"][1:4] for c in fake_runner.calls] == [["-rlt", "--protect-args", "--rsh=" + rsh]] * 2
    assert bk.rsync_argv() == ["rsync", "-rlt", "--protect-args"]


def test_copy_offsite_really_copies_and_verifies(tmp_path):
    from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import SubprocessRunner
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "dumps").mkdir(parents=True)
    (src / "dumps" / "a.dump").write_bytes(b"abc")
    (src / "dumps" / "b.dump.partial").write_bytes(b"half")
    result = bk.copy_offsite(SubprocessRunner(), str(src), str(dest))
    assert result["differences"] == [] and (dest / "dumps" / "a.dump").read_bytes() == b"abc"
    assert not (dest / "dumps" / "b.dump.partial").exists()
    (dest / "dumps" / "a.dump").write_bytes(b"abX")  # same size, different content
    result = bk.copy_offsite(SubprocessRunner(), str(src), str(dest))
    assert result == {"copied": [], "differences": []}
    assert (dest / "dumps" / "a.dump").read_bytes() == b"abX"  # never overwritten offsite
    assert bk.offsite_differences(SubprocessRunner(), str(src), str(dest), ["dumps/a.dump"]) == [
        {"path": "dumps/a.dump", "state": "mismatch"}]
    assert json.dumps(result)
