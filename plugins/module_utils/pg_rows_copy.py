# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""The point-in-time copy of rows mode: a scratch PostgreSQL beside the live one, on the db host.

A copy of the chosen base backup in its own directory (data dir, socket and log inside it), its own
port, archiving off, replayed from the WAL archive to the target and promoted. The live server is not
touched. ``hot_standby = off``: ``pg_ctl start -w`` returns once replay has reached the target and the
copy accepts connections. The copy is read through its socket only (``listen_addresses = ''``; the
directory is 0700, owned by the cluster's OS user); a read-only role ``hb_rows_reader`` is there for an
operator who keeps it (``keep_copy``).
"""

from __future__ import annotations

import os
import shutil
import time

from ansible_collections.healthbutler.recovery.plugins.module_utils import pitr_plan
from ansible_collections.healthbutler.recovery.plugins.module_utils.pitr_exec import PgServer
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError, RecoveryError

READER = "hb_rows_reader"
MARKER = "hb_rows_copy.json"


def copy_dir(data_dir, stamp):
    """``<data_dir>.rows_copy_<UTC>``: beside the live data directory, named for cleanup_preserved."""
    return "%s.rows_copy_%s" % (data_dir.rstrip("/"), stamp)


def settings(port, socket_dir, target, wal_dir, timeline):
    """Ordered settings appended to the copy's ``postgresql.auto.conf`` (the last one wins)."""
    base = [("port", str(port)), ("listen_addresses", ""), ("unix_socket_directories", socket_dir),
            ("archive_mode", "off"), ("archive_command", ""), ("logging_collector", "off"),
            ("log_destination", "stderr"), ("hot_standby", "off"), ("primary_conninfo", ""), ("ssl", "off"),
            ("shared_buffers", "64MB"), ("synchronous_standby_names", "")]
    return base + pitr_plan.recovery_settings(dict(target, action="promote"), pitr_plan.restore_command(wal_dir),
                                              timeline)


def render(items):
    lines = ["%s = '%s'" % (k, str(v).replace("'", "''")) for k, v in items]
    return "\n# healthbutler.recovery rows mode: a point-in-time copy\n" + "\n".join(lines) + "\n"


HBA = "local all %s trust\nlocal all all peer\n" % READER


class RowsCopy:
    """The scratch instance: ``create`` (copy, configure, replay, promote), ``connect_info``, ``destroy``."""

    def __init__(self, runner, bindir, os_user, root, port, startup_timeout=3600):
        self.runner = runner
        self.root = root
        self.data = os.path.join(root, "data")
        self.log = os.path.join(root, "server.log")
        self.port = int(port)
        self.timeout = int(startup_timeout)
        self.server = PgServer(runner, bindir, os_user, self.data, port, root, startup_log=self.log)

    def exists(self):
        return os.path.isdir(self.root)

    def running(self):
        return self.exists() and self.server.postmaster_alive()

    def create(self, base_path, target, wal_dir, timeline):
        """Restore ``base_path`` into the copy and replay to ``target``; raises RecoveryError with the log."""
        if self.exists():
            raise RecoveryError("the copy directory %s already exists: a copy kept from an earlier run? Remove it "
                                "with cleanup_preserved.yml or give another stamp" % self.root, path=self.root)
        os.makedirs(self.root, mode=0o700)
        try:
            shutil.copytree(base_path, self.data, symlinks=True)
            for name in ("postmaster.pid", "standby.signal", "backup_manifest"):
                if os.path.exists(os.path.join(self.data, name)):
                    os.remove(os.path.join(self.data, name))
            for conf, text in (("postgresql.conf", ""), ("pg_ident.conf", "")):
                if not os.path.exists(os.path.join(self.data, conf)):
                    with open(os.path.join(self.data, conf), "w", encoding="utf-8") as fh:
                        fh.write(text)
            with open(os.path.join(self.data, "pg_hba.conf"), "w", encoding="utf-8") as fh:
                fh.write(HBA)
            os.makedirs(os.path.join(self.data, "pg_wal"), exist_ok=True)
            with open(os.path.join(self.data, "postgresql.auto.conf"), "a", encoding="utf-8") as fh:
                fh.write(render(settings(self.port, self.root, target, wal_dir, timeline)))
            open(os.path.join(self.data, "recovery.signal"), "w", encoding="utf-8").close()
            self.runner.check(["chown", "-R", "%s:" % self.server.os_user, self.root], what="chown of the copy")
            os.chmod(self.root, 0o700)
            os.chmod(self.data, 0o700)
            res = self.server.ctl("-l", self.log, "-w", "-t", str(self.timeout), "start", timeout=self.timeout + 60)
            if res.rc != 0:
                raise RecoveryError("the point-in-time copy did not start (target not reached, or a setting "
                                    "refused): %s" % self.log_tail(), log=self.log_tail())
            self.wait_promoted()
            self.server.query("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN "
                              "CREATE ROLE %s LOGIN; END IF; END $$; GRANT pg_read_all_data TO %s; "
                              "ALTER ROLE %s SET default_transaction_read_only = on; SELECT '1'::json;"
                              % (READER, READER, READER, READER))
        except (OSError, CommandError, RecoveryError) as exc:
            log = self.log_tail()
            self.destroy()
            if isinstance(exc, RecoveryError) and not isinstance(exc, CommandError):
                raise
            raise RecoveryError("the point-in-time copy failed: %s; log: %s" % (
                getattr(exc, "msg", None) or str(exc), log), log=log) from exc
        return self.connect_info()

    def wait_promoted(self, sleep=time.sleep, clock=time.monotonic):
        """``pg_ctl -w`` may return at end of replay, before the promoted copy accepts connections: wait for them."""
        deadline = clock() + self.timeout
        while True:
            try:
                if self.server.query("SELECT to_json(NOT pg_is_in_recovery())"):
                    return True
            except CommandError as exc:
                if not self.server.postmaster_alive() or clock() > deadline:
                    raise RecoveryError("the point-in-time copy did not come out of recovery: %s; log: %s"
                                        % (exc.msg, self.log_tail()), log=self.log_tail()) from exc
            if clock() > deadline:
                raise RecoveryError("the point-in-time copy is still in recovery after %d s" % self.timeout)
            sleep(0.2)

    def reached(self):
        """Where the copy's replay stopped, from its log (``recovery stopping ...``)."""
        for line in self.read_log().splitlines():
            if "recovery stopping" in line:
                return line.split("LOG:", 1)[-1].strip()
        return None

    def connect_info(self, dbname=None):
        cmd = "psql -h %s -p %d -U %s%s" % (self.root, self.port, READER, (" -d %s" % dbname) if dbname else "")
        return {"dir": self.root, "data_dir": self.data, "socket_dir": self.root, "port": self.port,
                "read_only_role": READER, "log": self.log, "psql": "su %s -c '%s'" % (self.server.os_user, cmd)}

    def read_log(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def log_tail(self, lines=12):
        return " | ".join(self.read_log().strip().splitlines()[-lines:])

    def destroy(self):
        """Stop the copy (immediate: nothing in it is kept) and remove its directory."""
        if self.server.postmaster_alive():
            self.server.ctl("-m", "immediate", "-w", "-t", "60", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        return not os.path.exists(self.root)
