# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Drive one PM2 process: read it, plan a state change, apply it, wait until stable.

``pm2 jlist`` may print text before its JSON and its ``pm2_env`` carries the
app's whole environment (secrets included): only ``summarize`` output ever
leaves this module. NOTE for the lead: ``parse_jlist``/``summarize`` duplicate
the minimum of the diagnosis area's ``pm2.py``, which was not on main yet.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
import time

from ansible_collections.healthbutler.recovery.plugins.module_utils import pm2 as pm2_facts
from ansible_collections.healthbutler.recovery.plugins.module_utils.redact import parse_env_text, redact_text
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError, RecoveryError

STATES = ("started", "stopped", "restarted", "reloaded")
# Fields of pm2_env that define how the process is launched; everything else
# (env, axm_*, versioning) is left out on purpose.
DEFINITION_FIELDS = ("min_uptime", "max_restarts", "restart_delay", "kill_timeout", "exec_mode",
                     "instances", "merge_logs", "namespace", "autorestart", "exec_interpreter")


class Pm2Error(RecoveryError):
    """A PM2 operation could not be done."""


def parse_jlist(text):
    """Return the process list from ``pm2 jlist`` output, skipping any text before the JSON."""
    try:
        return pm2_facts.parse_jlist(text)
    except ValueError as exc:
        raise Pm2Error("pm2 jlist printed no JSON process list", stdout=(text or "")[-2000:]) from exc


def summarize(proc):
    """The safe view of one jlist entry: never ``pm2_env`` as a whole."""
    env = proc.get("pm2_env") or {}
    monit = proc.get("monit") or {}
    node_args = env.get("node_args") or []
    if isinstance(node_args, str):
        node_args = shlex.split(node_args)
    summary = {
        "name": proc.get("name") or env.get("name"),
        "pm_id": proc.get("pm_id", env.get("pm_id")),
        "pid": proc.get("pid") or 0,
        "status": env.get("status", "unknown"),
        "restart_time": int(env.get("restart_time") or 0),
        "unstable_restarts": int(env.get("unstable_restarts") or 0),
        "memory": int(monit.get("memory") or 0),
        "cpu": monit.get("cpu", 0),
        "pm_uptime": env.get("pm_uptime"),
        "exit_code": env.get("exit_code"),
        "script": env.get("pm_exec_path"),
        "cwd": env.get("pm_cwd") or env.get("cwd"),
        "args": list(env.get("args") or []),
        "node_args": list(node_args),
        "max_memory_restart": env.get("max_memory_restart"),
        "out_log": env.get("pm_out_log_path"),
        "error_log": env.get("pm_err_log_path"),
    }
    summary["definition"] = {k: env[k] for k in DEFINITION_FIELDS if k in env}
    return summary


def find_process(procs, name):
    """The summary of ``name``; the error names the app and the apps PM2 does know."""
    for proc in procs:
        if proc.get("name") == name:
            return summarize(proc)
    known = sorted({p.get("name") for p in procs if p.get("name")})
    raise Pm2Error("PM2 knows no app named '%s'; apps PM2 knows: %s"
                   % (name, ", ".join(known) if known else "(none)"), known_apps=known)


def parse_memory(value):
    """'512M', '1G', '300K' or bytes → bytes (PM2's max_memory_restart units)."""
    if value is None:
        return None
    text = str(value).strip().upper()
    match = re.fullmatch(r"(\d+)\s*([KMG]?)B?", text)
    if not match:
        raise ValueError("max_memory_restart must be bytes or a number with K, M or G, got %r" % value)
    return int(match.group(1)) * {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}[match.group(2)]


def definition_changes(current, node_args=None, max_memory_restart=None):
    """What a re-declaration would change: {'node_args': (old, new), ...}."""
    changes = {}
    if node_args is not None:
        wanted = shlex.split(node_args) if isinstance(node_args, str) else list(node_args)
        if wanted != current["node_args"]:
            changes["node_args"] = (current["node_args"], wanted)
    if max_memory_restart is not None:
        wanted = parse_memory(max_memory_restart)
        have = current.get("max_memory_restart")
        if have is None or int(have) != wanted:
            changes["max_memory_restart"] = (have, wanted)
    return changes


def plan(state, current, changes):
    """Ordered actions to reach ``state``: 'recreate', 'restart', 'reload', 'stop' or none."""
    if state not in STATES:
        raise ValueError("state must be one of %s, got %r" % (", ".join(STATES), state))
    running = current["status"] in ("online", "launching")
    if state == "stopped":
        return ["stop"] if current["status"] not in ("stopped",) else []
    if changes:
        # The runbook's way: delete, start with the new definition, pm2 save.
        return ["recreate"]
    if state == "started":
        return [] if running else ["restart"]
    if state == "reloaded" and running:
        return ["reload"]
    return ["restart"]


def declaration(current, changes):
    """A PM2 app declaration (JSON ecosystem) re-creating the process from its own record."""
    app = {"name": current["name"], "script": current["script"], "cwd": current["cwd"],
           "node_args": current["node_args"], "out_file": current["out_log"],
           "error_file": current["error_log"]}
    if current["args"]:
        app["args"] = current["args"]
    app.update(current["definition"])
    if current.get("max_memory_restart"):
        app["max_memory_restart"] = int(current["max_memory_restart"])
    for key, (_old, new) in changes.items():
        app[key] = new
    return {"apps": [{k: v for k, v in app.items() if v is not None}]}


def redact_line(line):
    """Mask secrets in one log line (URL credentials, KEY=value, PASSWORD '...', bearer tokens)."""
    return redact_text(line)


def tail_file(path, lines):
    """The last ``lines`` lines of ``path``, redacted; [] when it cannot be read."""
    if not path or lines <= 0 or not os.path.isfile(path):
        return []
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 256 * lines))
        text = fh.read().decode("utf-8", "replace")
    return [redact_line(x) for x in text.splitlines()[-lines:]]


def env_file_keys(path):
    """{KEY: 'set'|'empty'} of a .env file; values never leave this function."""
    with open(path, encoding="utf-8") as fh:
        return {key: "set" if value else "empty" for key, value in parse_env_text(fh.read())}


def memory_trend(samples):
    """Summarize [(seconds, bytes)] samples: first, last, peak and slope in MB/min."""
    if not samples:
        return {"samples": 0}
    first, last = samples[0], samples[-1]
    span = last[0] - first[0]
    slope = ((last[1] - first[1]) / (1024 * 1024)) / (span / 60.0) if span > 0 else 0.0
    change = (last[1] - first[1]) / float(first[1] or 1)
    # Within 5 % of where it started counts as flat: short windows make slopes look steep.
    direction = "flat" if abs(change) < 0.05 else ("rising" if change > 0 else "falling")
    return {"samples": len(samples), "seconds": round(span, 1), "first_mb": round(first[1] / 1048576, 1),
            "last_mb": round(last[1] / 1048576, 1), "peak_mb": round(max(s[1] for s in samples) / 1048576, 1),
            "change_pct": round(100 * change, 1), "slope_mb_per_min": round(slope, 2), "trend": direction}


class Pm2:
    """PM2 of one ``PM2_HOME`` through a ``CommandRunner``."""

    def __init__(self, runner, binary="pm2", home=None, sleep=time.sleep, clock=time.monotonic):
        self.runner = runner
        self.binary = binary
        self.env = {"PM2_HOME": home} if home else {}
        self.sleep = sleep
        self.clock = clock

    def _pm2(self, *args, timeout=120):
        argv = [self.binary] + list(args)
        res = self.runner.run(argv, env=self.env, timeout=timeout)
        if res.rc != 0:
            raise CommandError("pm2 %s failed (rc=%s): %s" % (args[0], res.rc, (res.stderr or res.stdout)
                                                              .strip()[-1000:]), argv, res.rc,
                               res.stdout[-2000:], res.stderr[-2000:])
        return res

    def processes(self):
        return parse_jlist(self._pm2("jlist").stdout)

    def get(self, name):
        return find_process(self.processes(), name)

    def apply(self, action, current, changes=None):
        name = current["name"]
        if action in ("restart", "reload", "stop"):
            self._pm2(action, name)
        elif action == "recreate":
            self.recreate(current, changes or {})
        else:  # pragma: no cover - plan() only yields the above
            raise ValueError(action)

    def recreate(self, current, changes):
        """Delete, start from the recorded definition with ``changes``, save; put the old one back on failure."""
        self._pm2("delete", current["name"])
        try:
            self._start_declaration(declaration(current, changes))
        except CommandError:
            self._start_declaration(declaration(current, {}))
            raise
        self._pm2("save")

    def _start_declaration(self, decl):
        fd, path = tempfile.mkstemp(prefix="hb-pm2-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(decl, fh)
            self._pm2("start", path)
        finally:
            os.unlink(path)

    def wait_stopped(self, name, timeout):
        deadline = self.clock() + timeout
        while True:
            proc = self.get(name)
            if proc["status"] == "stopped":
                return proc
            if self.clock() >= deadline:
                raise Pm2Error("%s did not stop within %ss (status %s)" % (name, timeout, proc["status"]),
                               process=proc)
            self.sleep(1)

    def wait_stable(self, name, settle, timeout, ready=None):
        """Wait until ``name`` is online and neither restarts nor changes pid for ``settle`` seconds.

        With ``ready`` (a callable, e.g. "its HTTP port answers"), the app must answer it first; the settle then
        only confirms that the process which answered is still the one running.
        """
        deadline = self.clock() + timeout
        proc = self.get(name)
        while True:
            if proc["status"] == "online" and proc["pid"]:
                baseline = proc
                if ready is None or self._until(ready, deadline):
                    self.sleep(settle)
                    proc = self.get(name)
                    if (proc["status"] == "online" and proc["pid"] == baseline["pid"]
                            and proc["restart_time"] == baseline["restart_time"]):
                        return proc
            if self.clock() >= deadline:
                raise Pm2Error("%s is not online and stable after %ss: status %s, restarts %s, unstable restarts %s"
                               % (name, timeout, proc["status"], proc["restart_time"],
                                  proc["unstable_restarts"]), process=proc)
            self.sleep(1 if ready is None else 0.2)
            proc = self.get(name)

    def _until(self, ready, deadline):
        while self.clock() < deadline:
            if ready():
                return True
            self.sleep(0.2)
        return False

    def watch_memory(self, name, seconds, interval):
        """Sample the process memory for ``seconds``; return the trend summary and samples in MB."""
        start = self.clock()
        samples = []
        while True:
            proc = self.get(name)
            samples.append((self.clock() - start, proc["memory"]))
            if self.clock() - start >= seconds:
                break
            self.sleep(interval)
        trend = memory_trend(samples)
        trend["samples_mb"] = [round(s[1] / 1048576, 1) for s in samples]
        return trend
