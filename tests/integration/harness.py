"""Integration harness: run playbooks through ansible-runner, poke the sandbox.

Imported by conftest.py (fixtures) and by tests (``from harness import ...``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import ansible_runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Where worker sandboxes live: a directory `postgres` can reach wherever the checkout is.
WORKER_SANDBOX_ROOT = "/var/lib/healthbutler-sandbox"


def isolate_xdist_worker():
    """Give each pytest-xdist worker after gw0 its own sandbox: ports +100 per worker, own directory.

    gw0 (or a run without xdist) keeps the checkout's sandbox and HB_PORT_OFFSET as set.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:])
    if index == 0:
        return
    offset = int(os.environ.get("HB_PORT_OFFSET") or 0) + 100 * index
    os.environ["HB_PORT_OFFSET"] = str(offset)
    checkout = hashlib.sha1(ROOT.encode()).hexdigest()[:12]
    os.environ["HB_SANDBOX_DIR"] = os.path.join(WORKER_SANDBOX_ROOT, "%s-%s" % (checkout, worker))


class PlaybookRun:
    """What one ansible-runner run left: rc, status, stdout text, per-host stats, events."""

    def __init__(self, runner):
        self.rc = runner.rc
        self.status = runner.status
        self.stdout = runner.stdout.read()
        self.stats = runner.stats or {}
        self.events = list(runner.events)

    @property
    def changed(self):
        return sum((self.stats.get("changed") or {}).values())

    @property
    def failed(self):
        return self.rc != 0

    def task_results(self, task_name):
        """Module results of the tasks whose name contains ``task_name``."""
        return [e["event_data"]["res"] for e in self.events
                if e.get("event") in ("runner_on_ok", "runner_on_failed")
                and task_name in e["event_data"].get("task", "")]


def run_playbook(playbook, extravars=None, check=False, inventory=None, limit=None, tags=None,
                 envvars=None, timeout=None):
    """Run ``playbooks/<playbook>`` (or an absolute path) with the project's ansible.cfg."""
    path = playbook if os.path.isabs(playbook) else os.path.join(ROOT, "playbooks", playbook)
    cmdline = []
    if check:
        cmdline.append("--check")
    if tags:
        cmdline += ["--tags", tags]
    env = {"ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_FORCE_COLOR": "0"}
    env.update(envvars or {})
    with tempfile.TemporaryDirectory(prefix="hb-runner-") as pdd:
        runner = ansible_runner.run(
            private_data_dir=pdd, project_dir=ROOT, playbook=path,
            inventory=inventory or os.path.join(ROOT, "inventories", "sandbox"),
            extravars=extravars or {}, cmdline=" ".join(cmdline) or None, limit=limit,
            envvars=env, quiet=True, timeout=timeout)
        return PlaybookRun(runner)


class Sandbox:
    """The running sandbox: its resolved site model plus ways to poke it."""

    def __init__(self, site):
        self.site = site

    def __getitem__(self, name):
        return self.site[name]

    @property
    def dir(self):
        return self.site["hb_sandbox_dir"]

    def credential(self, name):
        with open(os.path.join(self.dir, "credentials", name), encoding="utf-8") as fh:
            return fh.read().split()[0]

    def env_file(self):
        out = {}
        with open(self.site["hb_app_env_file"], encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    key, value = line.split("=", 1)
                    out[key] = value
        return out

    def secrets(self):
        """Every secret value the sandbox holds (for "appears nowhere" checks)."""
        env = self.env_file()
        values = [env[k] for k in ("JWT_SECRET", "SESSION_SECRET", "SMS_API_KEY")]
        values += [self.credential(n) for n in ("db_app", "db_monitor", "redis")]
        return values

    # -- PostgreSQL -------------------------------------------------------
    def psql(self, sql, db=None, check=True):
        """Run SQL as the postgres superuser over the socket; return stdout (-A -t)."""
        argv = ["su", "-s", "/bin/sh", self.site["hb_pg_os_user"], "-c",
                "exec %s/psql -X -A -t -q -v ON_ERROR_STOP=1 -h %s -p %s -d %s" % (
                    self.site["hb_pg_bindir"], self.site["hb_pg_socket_dir"],
                    self.site["hb_pg_port"], db or self.site["hb_db_name"])]
        proc = subprocess.run(argv, input=sql, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("psql failed: %s" % proc.stderr)
        return proc.stdout.strip()

    def scalar(self, sql, db=None):
        return self.psql(sql, db=db)

    def standby_psql(self, sql, db="postgres"):
        """Run SQL on the sandbox's streaming standby (the db_standby host: the primary's port + 2000)."""
        argv = ["su", "-s", "/bin/sh", self.site["hb_pg_os_user"], "-c",
                "exec %s/psql -X -A -t -q -h %s -p %d -d %s" % (
                    self.site["hb_pg_bindir"], self.site["hb_pg_socket_dir"], int(self.site["hb_pg_port"]) + 2000, db)]
        return subprocess.run(argv, input=sql, capture_output=True, text=True, check=True).stdout.strip()

    def standby_state(self):
        """(in recovery?, receiver status, timeline of the last received WAL) of the standby."""
        out = self.standby_psql("SELECT pg_is_in_recovery() || ',' || coalesce((SELECT status || ',' || received_tli "
                                "FROM pg_stat_wal_receiver), 'none,0')")
        recovery, status, tli = out.split(",")
        return recovery in {"t", "true"}, status, int(tli)

    def pg_ctl(self, action, *extra):
        argv = ["su", "-s", "/bin/sh", self.site["hb_pg_os_user"], "-c",
                "exec %s/pg_ctl -D %s -w -t 60 %s %s" % (
                    self.site["hb_pg_bindir"], self.site["hb_pg_data_dir"], " ".join(extra), action)]
        return subprocess.run(argv, capture_output=True, text=True, check=False)

    def pg_pid(self):
        path = os.path.join(self.site["hb_pg_data_dir"], "postmaster.pid")
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as fh:
            return int(fh.readline())

    # -- Redis ------------------------------------------------------------
    def redis(self, *args):
        proc = subprocess.run(["redis-cli", "-p", str(self.site["hb_redis_port"])] + list(args),
                              capture_output=True, text=True, check=False,
                              env=dict(os.environ, REDISCLI_AUTH=self.credential("redis")))
        return proc.stdout.strip()

    # -- PM2 / app --------------------------------------------------------
    def pm2(self, *args):
        return subprocess.run([self.site["hb_pm2_bin"]] + list(args), capture_output=True, text=True,
                              check=False, env=dict(os.environ, PM2_HOME=self.site["hb_pm2_home"]))

    def pm2_process(self):
        out = self.pm2("jlist").stdout
        procs = json.loads(out[out.index("["):])
        return next((p for p in procs if p["name"] == self.site["hb_app_name"]), None)

    def http(self, path="/health", method="GET", body=None, timeout=5):
        """Return (status, parsed JSON or text); status 0 when nothing answers."""
        url = "http://127.0.0.1:%s%s" % (self.site["hb_app_port"], path)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        except (urllib.error.URLError, OSError):
            return 0, None
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def wait_health(self, status=200, timeout=60):
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = self.http("/health")
            if got[0] == status:
                return got
            time.sleep(0.5)
        raise AssertionError("/health did not return %s within %ss: %r" % (status, timeout, got))

    def is_healthy(self):
        return self.http("/health")[0] == 200

    def flush_app_logs(self):
        """Empty the app's PM2 logs, so that traces of one test's fault do not count as the next one's."""
        self.pm2("flush", self["hb_app_name"])

    def ensure_healthy(self):
        """Bring a broken sandbox back with `sandbox present` (cheap when healthy)."""
        if not self.is_healthy():
            run = run_playbook("sandbox.yml", {"sandbox_state": "present"})
            assert run.rc == 0, run.stdout[-3000:]
        self.wait_health(200)


def resolve_site():
    run = run_playbook(os.path.join(ROOT, "tests", "integration", "playbooks", "site_vars.yml"))
    assert run.rc == 0, run.stdout[-3000:]
    return run.task_results("Print the hb_* variables")[0]["msg"]


def wait_for(predicate, timeout=60, interval=0.5, what="condition"):
    """Poll ``predicate`` until it returns something true and return that; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("%s not reached within %ss (last: %r)" % (what, timeout, last))


class PsqlSession:
    """One psql session kept open on a pipe, idle between statements: it holds a connection or a lock."""

    MARK = "__hb_done__"

    def __init__(self, argv, env=None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=dict(os.environ, **(env or {})))
        self.pid = None

    def send(self, sql):
        """Run statements and return the lines they printed, or False when the session is gone."""
        try:
            self.proc.stdin.write("%s\n\\echo %s\n" % (sql, self.MARK))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                return False
            if line.strip() == self.MARK:
                return lines
            lines.append(line.strip())

    def ask(self, sql):
        """The last line ``sql`` printed (end it with a SELECT of one value), or None."""
        lines = self.send(sql)
        return lines[-1] if lines else None

    def connect(self):
        """Open the connection now; remember its backend pid. False when PostgreSQL refused it."""
        pid = self.ask("SELECT pg_backend_pid();")
        self.pid = int(pid) if pid else None
        return self.pid is not None

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass


def app_session(box, name="hb-test"):
    """A session as the app's database user over TCP, as the app connects."""
    env = {"PGPASSWORD": box.credential("db_app"), "PGAPPNAME": name, "PGCONNECT_TIMEOUT": "5"}
    return PsqlSession([os.path.join(box["hb_pg_bindir"], "psql"), "-X", "-q", "-A", "-t", "-h", "127.0.0.1",
                        "-p", str(box["hb_pg_port"]), "-U", box["hb_db_app_user"], "-d", box["hb_db_name"]], env)


def superuser_session(box):
    """A session as the cluster's OS user over the socket."""
    return PsqlSession(["su", "-s", "/bin/sh", box["hb_pg_os_user"], "-c",
                        "exec %s/psql -X -A -t -q -h %s -p %s -d %s" % (
                            box["hb_pg_bindir"], box["hb_pg_socket_dir"], box["hb_pg_port"], box["hb_db_name"])])


def exhaust_connections(box, limit=60, name="hb-test-leak"):
    """Open app-user sessions until PostgreSQL refuses one ("too many clients"); return the open ones."""
    sessions = []
    for _unused in range(limit):
        session = app_session(box, name)
        if not session.connect():
            session.close()
            break
        sessions.append(session)
    return sessions
