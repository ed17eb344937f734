"""Real local receivers for the incident notifications: an HTTP server (webhook, Slack, PagerDuty) and an
SMTP server (aiosmtpd), both on ephemeral loopback ports, plus a site model that points at them with its
secrets in an Ansible Vault file."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from harness import ROOT

BIN = os.path.join(ROOT, ".venv", "bin")


class HttpReceiver:
    """Records every POST (path, JSON body, status answered); ``fail[path]`` lists statuses to answer first."""

    def __init__(self):
        self.requests, self.fail, self.lock = [], {}, threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    queue = receiver.fail.get(self.path) or []
                    status = queue.pop(0) if queue else (202 if "/pd" in self.path else 200)
                    receiver.requests.append({"path": self.path, "body": json.loads(body or b"{}"), "status": status})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": "ok"}' if status < 300 else b'{"error": "boom"}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def accepted(self, path):
        with self.lock:
            return [r["body"] for r in self.requests if r["path"] == path and r["status"] < 300]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    """aiosmtpd with AUTH (plain text allowed on loopback); keeps every message."""

    def __init__(self, password):
        self.messages, self.logins = [], []
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
                receiver.messages.append({"to": list(envelope.rcpt_tos),
                                          "data": envelope.content.decode("utf-8", "replace")})
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.password.decode() == password
            receiver.logins.append(ok)
            return AuthResult(success=ok)

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, authenticator=authenticator,
                                     auth_require_tls=False)
        self.controller.start()

    def to(self, address):
        return [m for m in self.messages if address in m["to"]]

    def stop(self):
        self.controller.stop()


def write_site(base, http, smtp, secret_values, extra=None):
    """An inventory (localhost, controller only) whose site model points at the receivers; secrets in vault."""
    inv = os.path.join(base, "inventory")
    os.makedirs(os.path.join(inv, "group_vars", "all"), exist_ok=True)
    with open(os.path.join(inv, "hosts.yml"), "w", encoding="utf-8") as fh:
        fh.write("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
                 "      ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n")
    site = {
        "hb_environment": "test", "hb_run_root": os.path.join(base, "runs"),
        "hb_controller_run_root": os.path.join(base, "runs"),
        "hb_app_dir": os.path.join(base, "app"), "hb_pg_data_dir": os.path.join(base, "pg"),
        "hb_backup_dir": os.path.join(base, "backups"), "hb_wal_archive_dir": os.path.join(base, "wal"),
        "hb_pm2_home": os.path.join(base, "pm2"),
        "hb_incident_backoff_s": 0.05, "hb_incident_timeout_s": 5,
        "hb_incident_contacts": {
            "oncall": {"role": "on-call engineer", "email": "ops-oncall@healthbutler.test",
                       "channels": ["hook", "slack", "pagerduty", "email"]},
            "team_lead": {"role": "team lead", "email": "ops-manager@healthbutler.test", "channels": ["hook", "email"]},
            "tech_director": {"role": "tech director", "email": "tech-lead@healthbutler.test",
                              "channels": ["hook", "email"]},
            "cto": {"role": "CTO", "email": "cto@healthbutler.test", "channels": ["hook", "email"]},
            "drills": {"role": "drill mailbox", "email": "drills@healthbutler.test", "channels": ["drillhook"]},
        },
        "hb_incident_channels": [
            {"name": "hook", "type": "webhook", "url": "{{ vault_hook_url }}"},
            {"name": "slack", "type": "slack", "url": "{{ vault_slack_url }}"},
            {"name": "pagerduty", "type": "pagerduty", "url": http.url("/pd/enqueue"),
             "routing_key": "{{ vault_pd_key }}"},
            {"name": "email", "type": "email", "host": "127.0.0.1", "port": smtp.port, "username": "hb",
             "password": "{{ vault_smtp_password }}", "from": "hb-recovery@healthbutler.test"},
            {"name": "drillhook", "type": "webhook", "url": "{{ vault_drill_url }}"},
        ],
        "hb_incident_drill_channel": "drillhook",
    }
    site.update(extra or {})
    with open(os.path.join(inv, "group_vars", "all", "main.yml"), "w", encoding="utf-8") as fh:
        json.dump(site, fh, indent=1)
    vault_pass = os.path.join(base, "vault-pass")
    with open(vault_pass, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_hex(16))
    vault_file = os.path.join(inv, "group_vars", "all", "vault.yml")
    with open(vault_file, "w", encoding="utf-8") as fh:
        json.dump(secret_values, fh)
    subprocess.run([os.path.join(BIN, "ansible-vault"), "encrypt", "--vault-password-file", vault_pass, vault_file],
                   check=True, capture_output=True, cwd=ROOT,
                   env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg")))
    return inv, vault_pass


def ansible_playbook(inv, vault_pass, playbook, extra, run_dir, now=None, inventories=()):
    """One real ansible-playbook run (-v); returns (rc, console)."""
    argv = [os.path.join(BIN, "ansible-playbook"), "-v", "-i", inv]
    for more in inventories:
        argv += ["-i", more]
    if vault_pass:
        argv += ["--vault-password-file", vault_pass]
    argv.append(os.path.join(ROOT, "playbooks", playbook))
    for key, value in extra.items():
        argv += ["-e", json.dumps({key: value})]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               HB_RUN_DIR=run_dir, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    env.pop("HB_INCIDENT_NOW", None)
    if now:
        env["HB_INCIDENT_NOW"] = now
    res = subprocess.run(argv, check=False, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    return res.returncode, res.stdout + res.stderr


def files_containing(root, values, skip=()):
    """Paths under ``root`` whose text contains any of ``values``."""
    hits = []
    for top, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(top, name)
            if any(path.startswith(s) for s in skip):
                continue
            with open(path, "rb") as fh:
                data = fh.read().decode("utf-8", "replace")
            hits += ["%s: %s" % (path, v[:6]) for v in values if v in data]
    return hits
