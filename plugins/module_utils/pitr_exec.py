# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Point-in-time recovery, executed: data dir aside, base backup in, replay, judge, or roll back.

``PgServer`` wraps ``pg_ctl``/``psql``/``pg_controldata`` for one data directory, run as the
cluster's OS user (through ``su`` when we are root). ``restore`` runs the steps of a plan made
by ``pitr_plan.build_plan``; any failure after the first change triggers ``rollback`` (the
failed directory is kept beside, the preserved one moved back, the server started as it was)
and raises ``ExecError`` naming the step and where everything is.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import re
import time

from ansible_collections.healthbutler.recovery.plugins.module_utils import pitr_plan, walnames
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError

RECOVERY_SETTINGS = ("restore_command", "recovery_target", "recovery_target_time", "recovery_target_xid",
                     "recovery_target_lsn", "recovery_target_name", "recovery_target_inclusive",
                     "recovery_target_timeline", "recovery_target_action")
LOG_STOPPING = "recovery stopping"
LOG_NOT_REACHED = "recovery ended before configured recovery target was reached"


class ExecError(Exception):
    """A step failed; ``details`` says which, what the log said and where things are."""

    def __init__(self, msg, step=None, details=None):
        super().__init__(msg)
        self.msg = msg
        self.step = step
        self.details = details or {}


def now_utc():
    return dt.datetime.now(dt.timezone.utc)


class PgServer:
    """One PostgreSQL data directory and how to drive it."""

    def __init__(self, runner, bindir, os_user, data_dir, port, socket_dir, startup_log=None):
        self.runner = runner
        self.bindir = bindir
        self.os_user = os_user
        self.data_dir = data_dir
        self.port = int(port)
        self.socket_dir = socket_dir
        self.startup_log = startup_log or os.devnull

    def bin(self, name):
        return os.path.join(self.bindir, name)

    def as_user(self, argv):
        """Run as the cluster's OS user: through ``su`` when we are root and they are not us."""
        if os.geteuid() == 0 and pwd.getpwuid(0).pw_name != self.os_user:
            return ["su", "-s", "/bin/sh", "-c", 'exec "$0" "$@"', "--", self.os_user] + list(argv)
        return list(argv)

    def ctl(self, *args, timeout=None):
        return self.runner.run(self.as_user([self.bin("pg_ctl"), "-D", self.data_dir] + list(args)),
                               timeout=timeout)

    def running(self):
        return self.ctl("status").rc == 0

    def stop(self, mode="fast"):
        res = self.ctl("-m", mode, "-w", "-t", "120", "stop")
        if res.rc != 0 and self.running():
            raise CommandError("pg_ctl stop failed: %s" % (res.stderr or res.stdout).strip(), rc=res.rc,
                               stdout=res.stdout, stderr=res.stderr)

    def start(self, wait=True):
        args = ["-l", self.startup_log, "-o", "-p %d" % self.port]
        args += ["-w", "-t", "300"] if wait else ["-W"]
        return self.ctl(*args, "start")

    def postmaster_pid(self):
        """PID from ``postmaster.pid`` when that process lives, else None."""
        pidfile = os.path.join(self.data_dir, "postmaster.pid")
        try:
            with open(pidfile, encoding="utf-8") as fh:
                pid = int(fh.readline())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def postmaster_alive(self):
        return self.postmaster_pid() is not None

    def wait_postmaster(self, timeout=30, sleep=time.sleep):
        """After ``start(wait=False)``: wait until the postmaster has written its pid file."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.postmaster_alive():
                return True
            sleep(0.2)
        return False

    def psql_argv(self, dbname="postgres"):
        return self.as_user([self.bin("psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                             "-h", self.socket_dir, "-p", str(self.port), "-d", dbname])

    def query(self, sql, dbname="postgres", timeout=60):
        """One JSON value from ``sql``; raises CommandError."""
        res = self.runner.run(self.psql_argv(dbname), data=sql, timeout=timeout,
                              env={"PGCONNECT_TIMEOUT": "5", "PGAPPNAME": "healthbutler.recovery"})
        if res.rc != 0:
            raise CommandError("psql failed (rc=%s): %s" % (res.rc, res.stderr.strip()[-1000:]),
                               rc=res.rc, stdout=res.stdout, stderr=res.stderr)
        text = res.stdout.strip()
        if not text:
            return None
        try:
            return json.loads(text)  # json_agg output spans lines
        except ValueError:
            return json.loads(text.splitlines()[-1])  # notices or command tags before the value

    def controldata(self):
        res = self.runner.check([self.bin("pg_controldata"), "-D", self.data_dir], what="pg_controldata")
        return parse_controldata(res.stdout)


def parse_controldata(text):
    out = {}
    for line in text.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            out[key.strip()] = value.strip()
    return out


def read_log_since(path, offset):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            fh.seek(offset)
            return fh.read()
    except OSError:
        return ""


def log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


_REACHED_PATTERNS = {
    "stopping": re.compile(r"recovery stopping (.*)$", re.M),
    "redo_done": re.compile(r"redo done at ([0-9A-F]+/[0-9A-F]+)", re.M),
    "last_tx": re.compile(r"last completed transaction was at log time (.+)$", re.M),
    "new_tli": re.compile(r"selected new timeline ID: (\d+)", re.M),
    "fatal": re.compile(r"(?:FATAL|PANIC):\s+(.*)$", re.M),
}


def judge_log(text, action="promote"):
    """What the server's log says about this recovery (layer 2 of the success judgement)."""
    found = {k: [m.group(1).strip() for m in p.finditer(text)] for k, p in _REACHED_PATTERNS.items()}
    verdict = {"stopping": found["stopping"][-1] if found["stopping"] else None,
               "redo_done_lsn": found["redo_done"][-1] if found["redo_done"] else None,
               "last_transaction_time": found["last_tx"][-1] if found["last_tx"] else None,
               "new_timeline": int(found["new_tli"][-1]) if found["new_tli"] else None,
               "fatal": found["fatal"][-3:], "target_not_reached": LOG_NOT_REACHED in text}
    problems = []
    if verdict["target_not_reached"]:
        problems.append("the log says: %s" % LOG_NOT_REACHED)
    if not verdict["stopping"]:
        problems.append("the log never says '%s'" % LOG_STOPPING)
    if action == "promote" and not verdict["new_timeline"] and not problems:
        problems.append("the log shows no new timeline after promotion")
    verdict["problems"] = problems
    verdict["ok"] = not problems
    return verdict


def write_settings(runner, server, pg_major, settings):
    """Write recovery settings for this major version and the signal file; return the files written."""
    name, text = pitr_plan.render_settings(settings, pg_major)
    path = os.path.join(server.data_dir, name)
    with open(path, "a" if name == "postgresql.auto.conf" else "w", encoding="utf-8") as fh:
        fh.write(text)
    files = [path]
    if int(pg_major) >= 12:
        signal = os.path.join(server.data_dir, "recovery.signal")
        with open(signal, "w", encoding="utf-8"):
            pass
        files.append(signal)
    runner.check(["chown", server.os_user] + files, what="chown recovery settings")
    for f in files:
        os.chmod(f, 0o600)
    return files


def replay_percent(replay_lsn, span):
    """Share of the WAL from the base backup's start to the target (or the end of archived WAL) replayed."""
    if not span or not replay_lsn:
        return None
    start, end = span
    if end is None or end <= start:
        return None
    done = walnames.parse_lsn(replay_lsn) - start
    return max(0.0, min(100.0, round(100.0 * done / (end - start), 1)))


def replay_span(plan):
    """(start, end) LSNs of the replay ``plan`` asks for, as integers, for ``replay_percent``."""
    target, base = plan["target"], plan["base_backup"]
    end = target.get("lsn")
    if end is None:
        end_lsn = (plan.get("wal_reach") or {}).get("end_lsn")
        end = walnames.parse_lsn(end_lsn) if end_lsn else None
    return (walnames.parse_lsn(base["start_lsn"]), end) if base.get("start_lsn") else None


def wait_for_recovery(server, target, action, log_file, log_offset, progress_file=None, timeout=3600,
                      poll=1.0, clock=time.monotonic, sleep=time.sleep, span=None):
    """Poll until the target is reached (or the server gives up); return samples of progress.

    ``span`` (``replay_span``) adds the percentage of the WAL to replay that is done to each sample."""
    deadline = clock() + timeout
    samples = []
    while True:
        log = read_log_since(log_file, log_offset)
        if LOG_NOT_REACHED in log:
            raise ExecError("recovery ended before the target %s=%s was reached (WAL missing or target "
                            "not in it)" % (target["kind"], target["value"]), step="replay",
                            details={"log": _log_tail(log)})
        alive = server.postmaster_alive()
        if not alive:
            if action == "shutdown" and LOG_STOPPING in log:
                return samples
            raise ExecError("PostgreSQL stopped during recovery", step="replay", details={"log": _log_tail(log)})
        try:
            state = server.query(
                "SELECT json_build_object('in_recovery', pg_is_in_recovery(), "
                "'replay_lsn', pg_last_wal_replay_lsn()::text, "
                "'paused', CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END)", timeout=10)
        except (CommandError, ValueError):
            state = None  # not accepting connections yet (before consistency)
        if state:
            sample = {"at": pitr_plan.iso(now_utc()), "replay_lsn": state["replay_lsn"],
                      "in_recovery": state["in_recovery"], "target": "%s=%s" % (target["kind"], target["value"]),
                      "percent": replay_percent(state["replay_lsn"], span)}
            samples.append(sample)
            if progress_file:
                done = "" if sample["percent"] is None else " (%.1f %% of the WAL to replay)" % sample["percent"]
                with open(progress_file, "a", encoding="utf-8") as fh:
                    fh.write("%s replayed %s%s in_recovery=%s target %s\n" % (
                        sample["at"], sample["replay_lsn"], done, sample["in_recovery"], sample["target"]))
            if action == "promote" and not state["in_recovery"]:
                return samples
            if action == "pause" and state["in_recovery"] and state["paused"] and LOG_STOPPING in log:
                return samples
        if clock() > deadline:
            raise ExecError("recovery did not reach its target within %ss" % timeout, step="replay",
                            details={"log": _log_tail(log), "progress": samples[-3:]})
        sleep(poll)


def _log_tail(text, lines=15):
    return text.strip().splitlines()[-lines:]


class Step:
    """Records per-step timings into ``steps``."""

    def __init__(self, steps, name):
        self.steps, self.name = steps, name

    def __enter__(self):
        self.start = time.monotonic()
        self.entry = {"step": self.name, "started": pitr_plan.iso(now_utc())}
        self.steps.append(self.entry)
        return self.entry

    def __exit__(self, exc_type, exc, tb):
        self.entry["seconds"] = round(time.monotonic() - self.start, 3)
        self.entry["status"] = "failed" if exc_type else "ok"
        return False


def restore(runner, server, plan, paths, wal_dir, log_file, pg_major, extra_settings=None,
            progress_file=None, timeout=3600, validate=None):
    """Run the PITR. ``paths`` = {preserved, failed}. Returns the result dict; raises ExecError
    after rolling back when anything fails after the first change."""
    steps, target, base = [], plan["target"], plan["base_backup"]
    state = {"was_running": server.running(), "moved_aside": False, "restored": False}
    result = {"steps": steps, "preserved_data_dir": paths["preserved"], "was_running": state["was_running"]}
    try:
        with Step(steps, "stop PostgreSQL"):
            if state["was_running"]:
                server.stop()
        with Step(steps, "move the data directory aside"):
            if os.path.exists(paths["preserved"]):
                raise ExecError("%s already exists" % paths["preserved"], step="move aside")
            os.rename(server.data_dir, paths["preserved"])
            state["moved_aside"] = True
        with Step(steps, "restore the base backup %s" % base["name"]):
            runner.check(["cp", "-a", base["path"], server.data_dir], what="copy of the base backup")
            state["restored"] = True
            for leftover in ("backup_manifest", "postmaster.pid", "postmaster.opts", "standby.signal"):
                if os.path.exists(os.path.join(server.data_dir, leftover)):
                    os.unlink(os.path.join(server.data_dir, leftover))
            runner.check(["chown", "-R", "%s:" % server.os_user, server.data_dir], what="chown of the data directory")
            os.chmod(server.data_dir, 0o700)
        with Step(steps, "write recovery settings"):
            settings = pitr_plan.recovery_settings(target, pitr_plan.restore_command(wal_dir),
                                                   plan["recovery_timeline"], extra_settings)
            result["recovery_files"] = write_settings(runner, server, pg_major, settings)
            result["recovery_settings"] = [k for k, _unused in settings]
        offset, startup_offset = log_size(log_file), log_size(server.startup_log)
        with Step(steps, "start PostgreSQL and replay WAL"):
            res = server.start(wait=False)
            if res.rc != 0 or not server.wait_postmaster():
                log = read_log_since(log_file, offset) + read_log_since(server.startup_log, startup_offset)
                why = [line.strip() for line in log.splitlines()
                       if re.search(r"FATAL|PANIC|invalid value|could not", line)][-2:]
                raise ExecError("PostgreSQL did not start on the restored data directory: %s"
                                % (" / ".join(why) or (res.stderr or res.stdout).strip()),
                                details={"log": _log_tail(log)})
            result["progress"] = wait_for_recovery(server, target, target["action"], log_file, offset,
                                                   progress_file, timeout, span=replay_span(plan))
        with Step(steps, "judge the recovery"):
            verdict = judge_log(read_log_since(log_file, offset), target["action"])
            result["log_verdict"] = verdict
            if not verdict["ok"]:
                raise ExecError("recovery not proven: " + "; ".join(verdict["problems"]), step="judge",
                                details={"log": _log_tail(read_log_since(log_file, offset))})
            # The last record and transaction applied: "redo done at" names the record replay stopped *at* (the
            # first commit not applied when stopping before one), so it is kept as stopped_at only.
            applied = last_applied(server)
            reached = {"lsn": applied.get("lsn") or verdict["redo_done_lsn"],
                       "time": applied.get("time") or verdict["last_transaction_time"],
                       "stopping": verdict["stopping"], "stopped_at": verdict["redo_done_lsn"]}
            if target["action"] == "promote":
                server.query("CHECKPOINT; SELECT to_json(1)")
                control = server.controldata()
                reached["timeline"] = int(control.get("Latest checkpoint's TimeLineID", 0))
                if reached["timeline"] <= int(base["timeline"]):
                    raise ExecError("pg_controldata shows timeline %s, not a new one after %s"
                                    % (reached["timeline"], base["timeline"]), step="judge")
            result["reached"] = reached
        if target["action"] == "promote":
            with Step(steps, "reset the recovery settings"):
                names = list(result["recovery_settings"])
                server.query("".join("ALTER SYSTEM RESET %s;\n" % n for n in names)
                             + "SELECT to_json(pg_reload_conf())")
            with Step(steps, "check archiving on the new timeline"):
                result["archiving"] = check_archiving(server, reached["timeline"])
        if validate:
            with Step(steps, "validate the data"):
                result["validation"] = validate()
        return result
    except (ExecError, CommandError, OSError, ValueError) as exc:
        failure = exc if isinstance(exc, ExecError) else ExecError(str(getattr(exc, "msg", exc)),
                                                                   step=steps[-1]["step"] if steps else None)
        if not failure.step and steps:
            failure.step = steps[-1]["step"]
        failure.details["steps"] = steps
        if state["moved_aside"]:
            failure.details["rollback"] = rollback(runner, server, paths, state["was_running"])
        failure.details.setdefault("preserved_data_dir", paths["preserved"])
        raise failure from None


def last_applied(server):
    """The end of the last WAL record and the commit time of the last transaction replayed (static after promotion)."""
    try:
        return server.query("SELECT json_build_object('lsn', pg_last_wal_replay_lsn()::text, "
                            "'time', to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', "
                            "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))", timeout=10) or {}
    except (CommandError, ValueError):
        return {}


def check_archiving(server, timeline, timeout=60, sleep=time.sleep):
    """After promotion: switch WAL and wait until the archiver has archived on the new timeline."""
    before = server.query("SELECT row_to_json(a) FROM pg_stat_archiver a")
    server.query("SELECT to_json(pg_switch_wal()::text)")
    prefix = "%08X" % timeline
    deadline = time.monotonic() + timeout
    while True:
        now = server.query("SELECT row_to_json(a) FROM pg_stat_archiver a")
        last = now.get("last_archived_wal") or ""
        if last.startswith(prefix):
            return {"last_archived_wal": last, "failed_count": now["failed_count"] - before["failed_count"],
                    "ok": True}
        if time.monotonic() > deadline:
            raise ExecError("WAL archiving does not continue on timeline %d: last archived %r, last failed %r"
                            % (timeline, last, now.get("last_failed_wal")), step="archiving")
        sleep(1)


def rollback(runner, server, paths, was_running):
    """Put the preserved data directory back; keep the failed one beside it. Returns what was done."""
    done = []
    try:
        if server.postmaster_alive() or server.running():
            try:
                server.stop("fast")
            except CommandError:
                server.stop("immediate")
            done.append("stopped the server on the restored directory")
        if os.path.exists(paths["preserved"]):
            if os.path.exists(server.data_dir):
                os.rename(server.data_dir, paths["failed"])
                done.append("kept the failed restore at %s" % paths["failed"])
            os.rename(paths["preserved"], server.data_dir)
            done.append("moved %s back to %s" % (paths["preserved"], server.data_dir))
        if was_running and not server.running():
            res = server.start(wait=True)
            if res.rc != 0:
                done.append("FAILED to start the original server: %s" % (res.stderr or res.stdout).strip())
                return {"ok": False, "actions": done}
            done.append("started the original server")
        return {"ok": True, "actions": done}
    except (CommandError, OSError) as exc:
        done.append("rollback FAILED: %s" % getattr(exc, "msg", exc))
        return {"ok": False, "actions": done}
