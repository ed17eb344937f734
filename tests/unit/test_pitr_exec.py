"""PITR execution: judging the log, settings files, replay wait, roll-back (fake runner, temp dirs)."""

import datetime as dt
import os

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import pitr_exec as pe
from ansible_collections.healthbutler.recovery.plugins.module_utils import pitr_plan as pp
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import Result

GOOD_LOG = """\
2026-11-28 23:51:39.433 UTC [7318] LOG:  starting point-in-time recovery to 2026-11-28 23:56:02.556297+00
2026-11-28 23:51:39.903 UTC [7318] LOG:  recovery stopping before commit of transaction 781, time 2026-11-28 23:56:03
2026-11-28 23:51:39.903 UTC [7318] LOG:  redo done at 0/9000F18 system usage: CPU: user: 0.00 s
2026-11-28 23:51:39.903 UTC [7318] LOG:  last completed transaction was at log time 2026-11-28 23:55:58.1+00
2026-11-28 23:51:40.156 UTC [7318] LOG:  selected new timeline ID: 4
"""
NOT_REACHED = """\
2026-11-28 23:51:39.903 UTC [7318] LOG:  redo done at 0/9000F18
2026-11-28 23:51:39.903 UTC [7318] FATAL:  recovery ended before configured recovery target was reached
"""


def test_log_of_a_good_recovery_is_judged_ok():
    verdict = pe.judge_log(GOOD_LOG)
    assert verdict["ok"], verdict["problems"]
    assert verdict["redo_done_lsn"] == "0/9000F18"
    assert verdict["new_timeline"] == 4
    assert verdict["last_transaction_time"] == "2026-11-28 23:55:58.1+00"
    assert verdict["stopping"].startswith("before commit of transaction 781")


@pytest.mark.parametrize("log,needle", [
    (NOT_REACHED, "recovery ended before configured recovery target was reached"),
    ("LOG:  redo done at 0/1\nLOG:  selected new timeline ID: 2\n", "never says 'recovery stopping'"),
    ("LOG:  recovery stopping after reaching consistency\n", "no new timeline"),
])
def test_log_without_proof_is_judged_failed(log, needle):
    verdict = pe.judge_log(log)
    assert not verdict["ok"]
    assert any(needle in p for p in verdict["problems"])


def test_pause_needs_no_new_timeline():
    assert pe.judge_log("LOG:  recovery stopping after reaching consistency\n", action="pause")["ok"]


def test_controldata_is_parsed():
    text = "pg_control version number:            1300\nLatest checkpoint's TimeLineID:       4\n"
    assert pe.parse_controldata(text)["Latest checkpoint's TimeLineID"] == "4"


class FakeServer:
    """Stands in for PgServer: scripted states, a data dir on disk."""

    def __init__(self, data_dir, states, alive=True, os_user="postgres"):
        self.data_dir = data_dir
        self.states = list(states)
        self.alive = alive
        self.os_user = os_user
        self.actions = []
        self.startup_log = os.devnull

    def postmaster_alive(self):
        return self.alive

    def running(self):
        return self.alive

    def query(self, sql, dbname="postgres", timeout=60):
        if not self.states:
            raise pe.CommandError("no connection")
        return self.states.pop(0)

    def stop(self, mode="fast"):
        self.actions.append("stop")
        self.alive = False

    def start(self, wait=True):
        self.actions.append("start")
        self.alive = True
        return Result(0, "", "")


def target(**kw):
    return pp.parse_target(kw, dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))


def test_wait_returns_once_out_of_recovery_and_writes_progress(tmp_path):
    log = tmp_path / "pg.log"
    log.write_text("old stuff\n")
    server = FakeServer(str(tmp_path), [
        None,
        {"in_recovery": True, "replay_lsn": "0/3000000", "paused": False},
        {"in_recovery": False, "replay_lsn": "0/4000000", "paused": None},
    ])
    progress = tmp_path / "progress.log"
    samples = pe.wait_for_recovery(server, target(lsn="0/4000000"), "promote", str(log), 0, str(progress),
                                   timeout=60, sleep=lambda s: None)
    assert [s["replay_lsn"] for s in samples] == ["0/3000000", "0/4000000"]
    assert "replayed 0/3000000" in progress.read_text()


def test_progress_says_how_much_of_the_wal_to_replay_is_done(tmp_path):
    log = tmp_path / "pg.log"
    log.write_text("")
    server = FakeServer(str(tmp_path), [
        {"in_recovery": True, "replay_lsn": "0/3000000", "paused": False},
        {"in_recovery": False, "replay_lsn": "0/4000000", "paused": None},
    ])
    progress = tmp_path / "progress.log"
    plan = {"target": target(lsn="0/4000000"), "base_backup": {"start_lsn": "0/2000000"}}
    samples = pe.wait_for_recovery(server, plan["target"], "promote", str(log), 0, str(progress), timeout=60,
                                   sleep=lambda s: None, span=pe.replay_span(plan))
    assert [s["percent"] for s in samples] == [50.0, 100.0]
    assert "replayed 0/3000000 (50.0 % of the WAL to replay)" in progress.read_text()
    # a time target: the end of the continuously archived WAL is the far end
    by_time = {"target": {"kind": "time"}, "base_backup": {"start_lsn": "0/2000000"},
               "wal_reach": {"end_lsn": "0/6000000"}}
    assert pe.replay_percent("0/3000000", pe.replay_span(by_time)) == 25.0
    assert pe.replay_percent("0/3000000", None) is None


def test_wait_fails_when_the_log_says_target_not_reached(tmp_path):
    log = tmp_path / "pg.log"
    log.write_text("before\n" + NOT_REACHED)
    server = FakeServer(str(tmp_path), [], alive=False)
    with pytest.raises(pe.ExecError) as err:
        pe.wait_for_recovery(server, target(lsn="0/4000000"), "promote", str(log), 7, timeout=60,
                             sleep=lambda s: None)
    assert "recovery ended before the target lsn=0/4000000 was reached" in err.value.msg


def test_wait_fails_when_postgres_dies(tmp_path):
    log = tmp_path / "pg.log"
    log.write_text("FATAL:  could not map anonymous shared memory\n")
    with pytest.raises(pe.ExecError) as err:
        pe.wait_for_recovery(FakeServer(str(tmp_path), [], alive=False), target(immediate=True), "promote",
                             str(log), 0, sleep=lambda s: None)
    assert "stopped during recovery" in err.value.msg
    assert any("could not map" in line for line in err.value.details["log"])


def test_wait_times_out(tmp_path):
    log = tmp_path / "pg.log"
    log.write_text("")
    ticks = iter(range(0, 1000, 10))
    server = FakeServer(str(tmp_path), [{"in_recovery": True, "replay_lsn": "0/1", "paused": False}] * 5)
    with pytest.raises(pe.ExecError) as err:
        pe.wait_for_recovery(server, target(immediate=True), "promote", str(log), 0, timeout=25,
                             clock=lambda: next(ticks), sleep=lambda s: None)
    assert "within 25s" in err.value.msg


def test_settings_are_written_for_pg15_with_signal_file(tmp_path, fake_runner):
    fake_runner.add(r"^chown")
    (tmp_path / "postgresql.auto.conf").write_text("work_mem = '8MB'\n")
    server = FakeServer(str(tmp_path), [])
    settings = pp.recovery_settings(target(lsn="0/4000000"), pp.restore_command("/wal"), 1)
    files = pe.write_settings(fake_runner, server, 15, settings)
    text = (tmp_path / "postgresql.auto.conf").read_text()
    assert text.startswith("work_mem = '8MB'\n") and "recovery_target_lsn = '0/4000000'" in text
    assert (tmp_path / "recovery.signal").exists()
    assert files[-1].endswith("recovery.signal")
    assert oct(os.stat(tmp_path / "recovery.signal").st_mode & 0o777) == "0o600"


def test_settings_are_written_as_recovery_conf_for_pg11(tmp_path, fake_runner):
    fake_runner.add(r"^chown")
    server = FakeServer(str(tmp_path), [])
    pe.write_settings(fake_runner, server, 11, pp.recovery_settings(target(immediate=True), "cp a b", 1))
    assert "recovery_target = 'immediate'" in (tmp_path / "recovery.conf").read_text()
    assert not (tmp_path / "recovery.signal").exists()


def test_rollback_keeps_the_failed_dir_and_puts_the_preserved_back(tmp_path, fake_runner):
    data, preserved, failed = tmp_path / "pgdata", tmp_path / "pgdata.pre", tmp_path / "pgdata.failed"
    data.mkdir()
    (data / "restored").write_text("x")
    preserved.mkdir()
    (preserved / "original").write_text("x")
    server = FakeServer(str(data), [], alive=True)
    outcome = pe.rollback(fake_runner, server, {"preserved": str(preserved), "failed": str(failed)}, True)
    assert outcome["ok"], outcome
    assert (data / "original").exists() and (failed / "restored").exists() and not preserved.exists()
    assert server.actions == ["stop", "start"]


def test_rollback_leaves_a_stopped_server_stopped(tmp_path, fake_runner):
    data, preserved = tmp_path / "pgdata", tmp_path / "pgdata.pre"
    preserved.mkdir()
    server = FakeServer(str(data), [], alive=False)
    outcome = pe.rollback(fake_runner, server, {"preserved": str(preserved), "failed": str(tmp_path / "f")}, False)
    assert outcome["ok"] and data.exists() and server.actions == []


def test_as_user_wraps_with_su_only_when_root(monkeypatch):
    server = pe.PgServer(None, "/bin", "postgres", "/d", 5432, "/s")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    argv = server.as_user(["/bin/psql", "-h", "/s"])
    assert argv[:7] == ["su", "-s", "/bin/sh", "-c", 'exec "$0" "$@"', "--", "postgres"]
    assert argv[7:] == ["/bin/psql", "-h", "/s"]
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert server.as_user(["x"]) == ["x"]
