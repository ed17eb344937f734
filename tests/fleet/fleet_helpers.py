"""The local staging fleet seen from the controller: SSH into a host, HTTP to an app host, its inventory."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request

import yaml
from harness import ROOT, run_playbook

STAGING_DIR = os.environ.get("HB_STAGING_DIR") or os.path.join(ROOT, ".staging")
INVENTORY = os.path.join(STAGING_DIR, "inventory.yml")
# Proxies from the environment must never see the fleet's addresses.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def staging_play(state, **extra):
    """playbooks/staging.yml with the fleet inventory (written by its first play)."""
    if not os.path.exists(INVENTORY):
        # ansible-runner takes a missing inventory path for inventory text: give it an empty inventory.
        os.makedirs(STAGING_DIR, mode=0o700, exist_ok=True)
        with open(INVENTORY, "w", encoding="utf-8") as fh:
            fh.write("all: {}\n")
    return run_playbook("staging.yml", dict({"staging_state": state}, **extra), inventory=INVENTORY,
                        envvars={"HB_STAGING_DIR": STAGING_DIR})


def fleet_play(playbook, extravars=None, limit=None, envvars=None):
    """Any playbook of the collection against the fleet inventory."""
    return run_playbook(playbook, extravars, inventory=INVENTORY, limit=limit,
                        envvars=dict({"HB_STAGING_DIR": STAGING_DIR}, **(envvars or {})))


class Fleet:
    """Hosts of the generated inventory, reached the way Ansible reaches them (deploy, key, known hosts)."""

    def __init__(self):
        with open(INVENTORY, encoding="utf-8") as fh:
            self.inventory = yaml.safe_load(fh)
        self.vars = self.inventory["all"]["vars"]
        self.hosts = {}
        self.groups = {}

        def walk(name, group):
            for host, hvars in (group.get("hosts") or {}).items():
                self.hosts[host] = hvars["ansible_host"]
                self.groups.setdefault(name, []).append(host)
            for child, sub in (group.get("children") or {}).items():
                walk(child, sub or {})
        walk("all", self.inventory["all"])

    def address(self, host):
        return self.hosts[host]

    def credential(self, name):
        with open(os.path.join(STAGING_DIR, "credentials", name), encoding="utf-8") as fh:
            return fh.read().split()[0]

    def ssh(self, host, command, stdin=None, check=True, timeout=60):
        """Run ``command`` (a shell string) on ``host`` as deploy; secrets go through ``stdin``."""
        argv = ["ssh", "-i", self.vars["ansible_ssh_private_key_file"], "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", "UserKnownHostsFile=%s" % os.path.join(STAGING_DIR, "known_hosts"),
                "%s@%s" % (self.vars["ansible_user"], self.address(host)), command]
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("ssh %s %r: rc %s: %s" % (host, command, proc.returncode, proc.stderr))
        return proc

    def http(self, host, path="/health", method="GET", body=None, timeout=5):
        """(status, parsed JSON or text) of the app on ``host`` from the controller, over the bridge."""
        url = "http://%s:%s%s" % (self.address(host), self.vars["hb_app_port"], path)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with _HTTP.open(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def status(self, host, path="/health"):
        """HTTP status of the app on ``host``; 0 when nothing answers (the app stopped)."""
        try:
            return self.http(host, path)[0]
        except (urllib.error.URLError, OSError):
            return 0

    def psql_as_postgres(self, sql):
        """SQL as the postgres superuser on the db host, over its own socket (sudo)."""
        db = self.groups["db"][0]
        cmd = "sudo -n -u postgres /usr/lib/postgresql/%s/bin/psql -X -A -t -q -v ON_ERROR_STOP=1 -h %s -p %s -d %s" % (
            self.vars["hb_pg_version"], self.vars["hb_pg_socket_dir"], self.vars["hb_pg_port"], self.vars["hb_db_name"])
        return self.ssh(db, cmd, stdin=sql).stdout.strip()
