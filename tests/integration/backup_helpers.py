"""Helpers of the backup integration tests: fresh backup sets, copies, damage, snapshots."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

from harness import ROOT, run_playbook

sys.path.insert(0, os.path.join(ROOT, "tests", "unit"))


def chown_postgres(path, user="postgres"):
    subprocess.run(["chown", "-R", "%s:%s" % (user, user), path], check=True)


def tree_digest(path):
    """{relative path: (size, sha256, mtime_ns)} of every file under ``path``."""
    out = {}
    for root, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as fh:
                digest = hashlib.sha256(fh.read()).hexdigest()
            st = os.lstat(full)
            out[os.path.relpath(full, path)] = (st.st_size, digest, st.st_mtime_ns)
    return out


def db_fingerprint(sandbox):
    """Row-for-row fingerprint of the live database plus its list of databases."""
    return {
        "health_data": sandbox.psql("SELECT count(*) || ':' || md5(string_agg(h::text, '|' ORDER BY id)) "
                                    "FROM health_data h"),
        "users": sandbox.psql("SELECT count(*) || ':' || md5(string_agg(u::text, '|' ORDER BY id)) FROM users u"),
        "databases": sandbox.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database"),
    }


def wait_archived(sandbox, timeout=60, segments=1):
    """Write rows and switch WAL ``segments`` times; wait until the last closed segment is archived."""
    for _unused in range(segments - 1):
        sandbox.psql("INSERT INTO health_data (user_id, metric, value) VALUES (1, 'steps', 1); "
                     "SELECT pg_switch_wal();")
    sandbox.http("/api/health-data", "POST", {"user_id": 1, "metric": "steps", "value": 1})
    name = sandbox.psql("SELECT pg_walfile_name(pg_switch_wal())")
    path = os.path.join(sandbox["hb_wal_archive_dir"], name)
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, "segment %s was not archived" % name
        time.sleep(0.5)
    return name


def backup_vars(tree):
    return {"backup_dir": os.path.join(tree, "backups"), "backup_offsite": os.path.join(tree, "offsite")}


def verify_vars(tree, wal_dir, scratch=False):
    return {"backup_verify_backup_dir": os.path.join(tree, "backups"),
            "backup_verify_offsite": os.path.join(tree, "offsite"),
            "backup_verify_wal_dir": wal_dir,
            "backup_verify_report_root": os.path.join(tree, "reports"),
            "backup_verify_scratch_dir": os.path.join(tree, "scratch"),
            "backup_verify_test_restore": scratch, "backup_verify_pitr": scratch}


def run_verify(tree, wal_dir, scratch=False, extra=None):
    run = run_playbook("verify_backups.yml", dict(verify_vars(tree, wal_dir, scratch), **(extra or {})))
    runs = sorted(glob.glob(os.path.join(tree, "reports", "2*")))
    assert runs, run.stdout[-3000:]
    with open(os.path.join(runs[-1], "report.json"), encoding="utf-8") as fh:
        report = json.load(fh)
    return run, report, runs[-1]


def statuses(report):
    return {c["name"]: c["status"] for c in report["checks"]}


def clone(src_tree, wal_dir, dest):
    """Hard-link copy of a backup set (backups, offsite) and the WAL archive under ``dest``.

    Faults must call ``private(path)`` before changing a file in place so that the
    original set is never touched; unlinking is safe. Returns the copied archive path.
    """
    os.makedirs(dest)
    for src, name in ((os.path.join(src_tree, "backups"), "backups"), (os.path.join(src_tree, "offsite"), "offsite"),
                      (wal_dir, "wal")):
        subprocess.run(["cp", "-al", src, os.path.join(dest, name)], check=True)
    return os.path.join(dest, "wal")


def private(path):
    """Give ``path`` its own inode (break the hard link) so it can be changed in place."""
    tmp = path + ".private"
    shutil.copy2(path, tmp)
    os.replace(tmp, path)
    return path


def only(pattern):
    found = glob.glob(pattern)
    assert len(found) == 1, (pattern, found)
    return found[0]


def shift_iso(value, hours):
    ts = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) - timedelta(hours=hours)
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def set_full_backups_back(tree, wal_dir, hours):
    """Make every full backup (dump, base) of ``tree`` look ``hours`` older: metadata, history file, mtimes."""
    for meta_path in glob.glob(os.path.join(tree, "*", "dumps", "*.json")) + glob.glob(
            os.path.join(tree, "*", "base", "*.json")):
        with open(meta_path, encoding="utf-8") as fh:
            meta = json.load(fh)
        for key in ("start", "end"):
            meta[key] = shift_iso(meta[key], hours)
        with open(private(meta_path), "w", encoding="utf-8") as fh:
            json.dump(meta, fh)
    for hist in glob.glob(os.path.join(wal_dir, "*.backup")):
        with open(hist, encoding="utf-8") as fh:
            text = fh.read()

        def back(match):
            ts = datetime.strptime(match.group(2), "%Y-%m-%d %H:%M:%S") - timedelta(hours=hours)
            return "%s: %s UTC" % (match.group(1), ts.strftime("%Y-%m-%d %H:%M:%S"))
        with open(private(hist), "w", encoding="utf-8") as fh:
            fh.write(re.sub(r"(START TIME|STOP TIME): (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", back, text))
    for path in glob.glob(os.path.join(tree, "*", "dumps", "*")) + glob.glob(os.path.join(tree, "*", "base", "*")):
        if os.path.isfile(path) and not path.endswith(".json"):
            private(path)
        st = os.stat(path)
        os.utime(path, (st.st_atime - hours * 3600, st.st_mtime - hours * 3600))


@contextlib.contextmanager
def ssh_offsite_host(workdir, user="postgres"):
    """A real sshd on a free loopback port that lets ``user`` in with a key made here: an offsite host.

    Yields ``{"login": "user@127.0.0.1", "rsh": <ssh command for rsync --rsh>}``; the key belongs to
    ``user`` (the backup modules run as it), the host key and sshd to root.
    """
    os.makedirs(workdir, exist_ok=True)
    host_key, client_key = os.path.join(workdir, "host_key"), os.path.join(workdir, "client_key")
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    shutil.copy(client_key + ".pub", os.path.join(workdir, "authorized_keys"))
    subprocess.run(["chown", user, client_key], check=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = os.path.join(workdir, "sshd_config")
    with open(config, "w", encoding="utf-8") as fh:
        fh.write("\n".join([
            "Port %d" % port, "ListenAddress 127.0.0.1", "HostKey " + host_key,
            "PidFile " + os.path.join(workdir, "sshd.pid"),
            "AuthorizedKeysFile " + os.path.join(workdir, "authorized_keys"),
            "AllowUsers " + user, "StrictModes no", "PasswordAuthentication no",
            # with PAM, a locked password (postgres has "!") does not refuse key logins
            "UsePAM yes",
            "KbdInteractiveAuthentication no", "PermitRootLogin no", ""]))
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert sshd.poll() is None, "sshd exited: %s" % sshd.stderr.read()
            assert time.monotonic() < deadline, "sshd did not listen on %d" % port
            time.sleep(0.2)
        rsh = ("ssh -p %d -i %s -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
               "-o LogLevel=ERROR" % (port, client_key))
        yield {"login": "%s@127.0.0.1" % user, "rsh": rsh}
    finally:
        sshd.terminate()
        sshd.wait(timeout=20)


@contextlib.contextmanager
def webhook_receiver():
    """A real HTTP endpoint on a free loopback port; yields ``(url, posts)``, posts being the JSON bodies."""
    posts = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d/hooks/backup" % server.server_address[1], posts
    finally:
        server.shutdown()
        server.server_close()
