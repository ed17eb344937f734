"""diagnose_journal: journalctl -u <unit> -n 500 where a journal exists, a clear reason where not."""

from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_journal as dj
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandRunner, Result


class FakeRunner(CommandRunner):
    def __init__(self, rc=0, stdout="", stderr=""):
        self.calls = []
        self.answer = Result(rc, stdout, stderr)

    def _run(self, argv, env, data, cwd, timeout):
        self.calls.append(argv)
        return self.answer


JOURNAL = """-- Journal begins at Mon 2026-11-30 08:00:01 CST, ends at Tue 2026-12-01 10:02:11 CST. --
2026-12-01T10:02:10+0800 app-1 node[811]: Cannot connect to database: connect ECONNREFUSED 10.0.2.5:5432
2026-12-01T10:02:11+0800 app-1 node[811]: loaded DATABASE_URL=postgres://hb:s3cretpass@db-1/health_butler
2026-12-01T10:02:11+0800 app-1 node[811]: Cannot connect to database: connect ECONNREFUSED 10.0.2.5:5432
"""


def test_reads_the_units_journal_redacted():
    runner = FakeRunner(stdout=JOURNAL)
    out = dj.read_journal(runner, "health-butler", 500, journalctl="/usr/bin/journalctl", is_booted=True)
    assert runner.calls == [["/usr/bin/journalctl", "-u", "health-butler", "-n", "500", "--no-pager",
                             "-o", "short-iso"]]
    assert out["available"] and out["count"] == 3
    assert not any("s3cretpass" in line for line in out["lines"])
    assert any("ECONNREFUSED" in line for line in out["lines"])
    assert out["summary"]["messages"][0]["count"] == 2


def test_no_entries_is_an_empty_journal():
    out = dj.read_journal(FakeRunner(stdout="-- No entries --\n"), "health-butler", is_booted=True,
                          journalctl="journalctl")
    assert out["available"] and out["lines"] == [] and out["count"] == 0


def test_without_systemd_it_says_no_journal_and_runs_nothing():
    runner = FakeRunner()
    out = dj.read_journal(runner, "health-butler", is_booted=False)
    assert out == {"available": False, "unit": "health-butler", "command": "journalctl -u health-butler -n 500",
                   "reason": "no journal on this host (systemd is not PID 1: /run/systemd/system is missing)"}
    assert runner.calls == []


def test_missing_journalctl_and_failures_are_named():
    assert dj.read_journal(FakeRunner(), "hb", is_booted=True, journalctl=None)["reason"] == \
        "no journal on this host (journalctl not found)"
    out = dj.read_journal(FakeRunner(rc=1, stderr="Failed to get journal access: Permission denied"), "hb",
                          is_booted=True, journalctl="journalctl")
    assert not out["available"] and out["reason"].startswith("journalctl failed (rc=1): Failed to get journal")


def test_booted_looks_for_the_systemd_run_directory(tmp_path):
    assert not dj.booted(str(tmp_path / "systemd" / "system"))
    (tmp_path / "systemd" / "system").mkdir(parents=True)
    assert dj.booted(str(tmp_path / "systemd" / "system"))
