"""Real faults for the service-recovery tests: held connections, held locks, a busy port."""

from __future__ import annotations

import os
import subprocess
import time


def wait_for(predicate, timeout=60, interval=0.5, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("%s not reached within %ss (last: %r)" % (what, timeout, last))


class Session:
    """One psql session as the app's database user over TCP, kept open on a pipe."""

    def __init__(self, sandbox, name="hb-test"):
        env = dict(os.environ, PGPASSWORD=sandbox.credential("db_app"), PGAPPNAME=name, PGCONNECT_TIMEOUT="5")
        self.proc = subprocess.Popen(
            [os.path.join(sandbox["hb_pg_bindir"], "psql"), "-X", "-q", "-A", "-t", "-h", "127.0.0.1",
             "-p", str(sandbox["hb_pg_port"]), "-U", sandbox["hb_db_app_user"], "-d", sandbox["hb_db_name"]],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.pid = None

    def send(self, sql):
        """Send statements and wait for their marker; False when the session is gone."""
        try:
            self.proc.stdin.write(sql + "\n\\echo __done__\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                return False
            if line.strip() == "__done__":
                return lines
            lines.append(line.strip())

    def connect(self):
        got = self.send("SELECT pg_backend_pid();")
        if got:
            self.pid = int(got[-1])
        return bool(got)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass


def exhaust_connections(sandbox, limit=40):
    """Open sessions until PostgreSQL refuses more ("too many clients"); return the open ones."""
    sessions = []
    for _ in range(limit):
        session = Session(sandbox, "hb-test-leak")
        if not session.connect():
            session.close()
            break
        sessions.append(session)
    return sessions


class BrokenBuild:
    """A deployed server.js that throws at start: PM2 restarts it until it gives up (errored)."""

    MARK = "hb-test: broken build"

    def __init__(self, box):
        self.path = box.pm2_process()["pm2_env"]["pm_exec_path"]
        with open(self.path, encoding="utf-8") as fh:
            self.original = fh.read()
        with open(self.path, "w", encoding="utf-8") as fh:
            fh.write("throw new Error(%r);\n" % self.MARK + self.original)

    def restore(self):
        with open(self.path, "w", encoding="utf-8") as fh:
            fh.write(self.original)
