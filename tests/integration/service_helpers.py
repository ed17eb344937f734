"""Real faults for the service-recovery tests: held connections, held locks, a busy port."""

from __future__ import annotations

import os
import socket
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


class PortBlocker:
    """Listen on a port so the app crashes with EADDRINUSE at start."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", int(port)))
        self.sock.listen(1)

    def close(self):
        self.sock.close()
