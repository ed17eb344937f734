"""backup_ship: pulling a backup tree read-only through rrsync, never overwriting, checked by checksum."""

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_ship as bs
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError, SubprocessRunner


def test_pull_never_overwrites_and_verifies_what_it_pulled(fake_runner, tmp_path):
    fake_runner.add(r"--ignore-existing", 0, ">f+++++++++ dumps/a.dump\ncd+++++++++ base/\n.d..t...... ./\n")
    fake_runner.add(r"--checksum --dry-run", 0, "")
    rsh = bs.ssh_command("/k/id", "/k/known")
    result = bs.pull(fake_runner, "deploy@10.0.0.21:health_butler", str(tmp_path / "copy"), rsh=rsh)
    assert result == {"copied": ["dumps/a.dump"], "differences": []}
    pull, check = fake_runner.calls
    # rrsync refuses --protect-args; partial and temporary files are never pulled; modes are kept.
    assert "--protect-args" not in pull["argv"] and "--protect-args" not in check["argv"]
    assert {"--exclude=*.partial", "--exclude=*.tmp", "--perms", "--rsh=" + rsh} <= set(pull["argv"])
    assert pull["argv"][-2:] == ["deploy@10.0.0.21:health_butler/", str(tmp_path / "copy") + "/"]
    assert check["data"] == "dumps/a.dump\n"
    assert (tmp_path / "copy").is_dir()


def test_pull_reports_a_copy_that_differs_and_dry_run_changes_nothing(fake_runner, tmp_path):
    fake_runner.add(r"--ignore-existing .*--dry-run", 0, ">f+++++++++ wal/000000010000000000000003\n")
    result = bs.pull(fake_runner, "deploy@h:wal", str(tmp_path / "w"), dry_run=True)
    assert result["copied"] == ["wal/000000010000000000000003"] and not (tmp_path / "w").exists()
    runner = type(fake_runner)().add(r"--ignore-existing", 0, ">f+++++++++ a\n")
    runner.add(r"--checksum", 0, ">fc.t...... a\n")
    assert bs.pull(runner, "deploy@h:x", str(tmp_path / "x"))["differences"] == [{"path": "a", "state": "mismatch"}]


def test_pull_refuses_white_space_and_a_failed_rsync_names_the_host(fake_runner, tmp_path):
    with pytest.raises(ValueError, match="white space"):
        bs.pull(fake_runner, "deploy@h:my backups", str(tmp_path))
    fake_runner.add(r"rsync", 12, "", "rrsync error: sending to read-only server is not allowed")
    with pytest.raises(CommandError, match="pull from deploy@h.*read-only"):
        bs.pull(fake_runner, "deploy@h:x", str(tmp_path / "y"))


def test_pull_for_real_keeps_modes_skips_partials_and_never_overwrites(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "dumps").mkdir(parents=True)
    (src / "dumps" / "a.dump").write_bytes(b"abc")
    (src / "dumps" / "a.dump").chmod(0o600)
    (src / "dumps" / "b.dump.partial").write_bytes(b"half")
    (src / "0001.tmp").write_bytes(b"t")
    result = bs.pull(SubprocessRunner(), str(src), str(dest))
    assert result == {"copied": ["dumps/a.dump"], "differences": []}
    assert (dest / "dumps" / "a.dump").stat().st_mode & 0o777 == 0o600
    assert not (dest / "dumps" / "b.dump.partial").exists() and not (dest / "0001.tmp").exists()
    (dest / "dumps" / "a.dump").write_bytes(b"kept")
    assert bs.pull(SubprocessRunner(), str(src), str(dest))["copied"] == []
    assert (dest / "dumps" / "a.dump").read_bytes() == b"kept"


def test_ssh_command_uses_the_links_key_and_known_hosts_only():
    cmd = bs.ssh_command("/k/id", "/k/known", connect_timeout=5)
    assert cmd.split()[:3] == ["ssh", "-i", "/k/id"]
    assert "StrictHostKeyChecking=yes" in cmd and "UserKnownHostsFile=/k/known" in cmd and "BatchMode=yes" in cmd
    with pytest.raises(ValueError):
        bs.ssh_command("/my key", "/k/known")
