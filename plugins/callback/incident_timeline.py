# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Callback: one JSON line per task/handler result into the run directory."""

from __future__ import annotations

DOCUMENTATION = r"""
name: incident_timeline
type: aggregate
short_description: Write the run's timeline (one JSON line per task and handler) into the run directory
description:
  - For every task and handler result it appends one JSON line to C(timeline.jsonl) in the run directory
    with UTC start, end, duration in seconds, host, role, task name, status
    (C(ok), C(changed), C(failed), C(ignored), C(skipped), C(unreachable)) and changed.
  - It also writes a C(playbook_start) line, one C(play_start) line per play and a closing C(run_end) line
    with the per-host stats. When the run is interrupted or dies, C(run_end) says C(interrupted) and every task
    still running gets a line with status C(interrupted).
  - Lines are flushed one by one, so a killed run keeps what happened until then.
  - Only metadata is written, never module results. A failed task's message is kept (shortened, with
    credentials in URLs and C(KEY=value) secrets masked) unless the task is C(no_log), in which case
    nothing but its name and status is written.
  - The plugin never fails a play; an I/O error is shown once as a warning and the plugin goes quiet.
  - The incident_report role and the drill role read this file.
requirements:
  - enabled in C(callbacks_enabled) in ansible.cfg
options:
  run_dir:
    description:
      - The run directory to write C(timeline.jsonl) into. Created when missing.
      - When unset, a new directory C(<run_root>/<UTC timestamp>-<playbook name>) is used.
    type: path
    env:
      - name: HB_RUN_DIR
    ini:
      - section: callback_incident_timeline
        key: run_dir
  run_root:
    description:
      - Where new run directories are created when O(run_dir) is unset.
      - Default is the sandbox's C(hb_run_root) when the sandbox exists (C($HB_SANDBOX_DIR/runs), or
        C(.sandbox/runs) beside the ansible.cfg in use), else C(.ansible/runs) there. The plugin never
        creates C(.sandbox) itself.
    type: path
    env:
      - name: HB_RUN_ROOT
    ini:
      - section: callback_incident_timeline
        key: run_root
  file_name:
    description: Name of the timeline file inside the run directory.
    type: str
    default: timeline.jsonl
    env:
      - name: HB_TIMELINE_FILE
    ini:
      - section: callback_incident_timeline
        key: file_name
"""

import atexit
import json
import os
import re
import time
from datetime import datetime, timezone

from ansible import constants as C
from ansible.plugins.callback import CallbackBase

MESSAGE_LIMIT = 500
_URL_CREDENTIALS = re.compile(r"(\w+://[^:/@\s]*:)[^@\s]+@")
_SECRET_ASSIGNMENT = re.compile(
    r"(\b[A-Za-z0-9_]*(?:SECRET|PASSWORD|PASSWD|TOKEN|KEY)[A-Za-z0-9_]*\s*[=:]\s*)([^\s,;'\"]+)", re.IGNORECASE)


def utc_iso(epoch):
    """ISO-8601 UTC with milliseconds and a Z suffix."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def mask_message(text):
    """Shorten a failure message and mask credentials that slipped into it."""
    text = _URL_CREDENTIALS.sub(r"\1***@", str(text))
    text = _SECRET_ASSIGNMENT.sub(r"\1***", text)
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + "..."


def default_run_root(config_file=None, cwd=None, sandbox_dir=None):
    """Where new run directories go when none is given.

    The sandbox's ``hb_run_root`` (``$HB_SANDBOX_DIR/runs`` or ``.sandbox/runs`` beside the ansible.cfg in
    use) when that sandbox exists; else ``.ansible/runs`` there, so that the plugin never creates
    ``.sandbox`` itself (the sandbox role may need to make it a link).
    """
    base = os.path.dirname(os.path.abspath(config_file)) if config_file else (cwd or os.getcwd())
    if sandbox_dir:
        return os.path.join(sandbox_dir, "runs")
    if os.path.isdir(os.path.join(base, ".sandbox")):
        return os.path.join(base, ".sandbox", "runs")
    return os.path.join(base, ".ansible", "runs")


def new_run_dir_name(playbook_path, now=None):
    stamp = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    stem = os.path.splitext(os.path.basename(playbook_path or "adhoc"))[0] or "adhoc"
    return "%s-%s" % (stamp, re.sub(r"[^A-Za-z0-9_.-]", "_", stem))


def task_status(kind, result_dict, ignore_errors):
    """Map a runner event to the timeline's status word."""
    if kind == "failed":
        return "ignored" if ignore_errors else "failed"
    if kind == "ok":
        return "changed" if result_dict.get("changed") else "ok"
    return kind


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "healthbutler.recovery.incident_timeline"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self.path = None
        self.playbook = None
        self.play = None
        self.disabled = False
        self.finished = False
        self.running = {}  # (task uuid, host) -> (start epoch, task)
        self.task_start = {}  # task uuid -> start epoch
        self.counts = {"ok": 0, "changed": 0, "failed": 0, "ignored": 0, "skipped": 0, "unreachable": 0}
        atexit.register(self._at_exit)

    # -- plumbing ----------------------------------------------------------
    def _option(self, name):
        try:
            return self.get_option(name)
        except Exception:  # options not loaded (unit use) or unknown
            return None

    def _resolve_path(self):
        run_dir = self._option("run_dir")
        if not run_dir:
            root = self._option("run_root") or default_run_root(
                getattr(C, "CONFIG_FILE", None), sandbox_dir=os.environ.get("HB_SANDBOX_DIR"))
            run_dir = os.path.join(root, new_run_dir_name(self.playbook))
        os.makedirs(run_dir, exist_ok=True)
        return os.path.join(run_dir, self._option("file_name") or "timeline.jsonl")

    def _write(self, record):
        if self.disabled:
            return
        try:
            if self.path is None:
                self.path = self._resolve_path()
            line = json.dumps(record, sort_keys=True, default=str)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except Exception as exc:  # never break the play for a record
            self.disabled = True
            if self.path and not os.path.isdir(os.path.dirname(self.path)):
                # the play removed its own run directory (e.g. sandbox absent): stop quietly
                self._display.vvv("incident_timeline: run directory gone, timeline stopped")
            else:
                self._display.warning("incident_timeline: not writing the timeline any more: %s" % exc)

    def _safely(self, func, *args):
        try:
            func(*args)
        except Exception as exc:
            if not self.disabled:
                self.disabled = True
                self._display.warning("incident_timeline: internal error, timeline stopped: %s" % exc)

    # -- playbook and play -------------------------------------------------
    def v2_playbook_on_start(self, playbook):
        self.playbook = getattr(playbook, "_file_name", None)
        self._write({"event": "playbook_start", "time": utc_iso(time.time()),
                     "playbook": self.playbook, "pid": os.getpid()})

    def v2_playbook_on_play_start(self, play):
        def record():
            self.play = play.get_name().strip()
            self._write({"event": "play_start", "time": utc_iso(time.time()), "play": self.play})
        self._safely(record)

    def _task_started(self, task):
        self.task_start[task._uuid] = time.time()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._safely(self._task_started, task)

    def v2_playbook_on_handler_task_start(self, task):
        self._safely(self._task_started, task)

    def v2_runner_on_start(self, host, task):
        self._safely(lambda: self.running.__setitem__((task._uuid, host.get_name()), (time.time(), task)))

    # -- results -----------------------------------------------------------
    def _record(self, result, kind):
        task = result._task
        host = result._host.get_name()
        end = time.time()
        started, _unused = self.running.pop((task._uuid, host), (None, None))
        start = started or self.task_start.get(task._uuid, end)
        res = result._result if isinstance(result._result, dict) else {}
        status = task_status(kind, res, getattr(task, "ignore_errors", False))
        self.counts[status] = self.counts.get(status, 0) + 1
        no_log = bool(getattr(task, "no_log", False)) or bool(res.get("_ansible_no_log"))
        record = {
            "event": "task", "host": host, "task": task.get_name().strip(), "play": self.play,
            "role": task._role.get_name() if getattr(task, "_role", None) else None,
            "handler": type(task).__name__ == "Handler",
            "action": getattr(task, "action", None), "status": status,
            "changed": bool(res.get("changed")), "start": utc_iso(start), "end": utc_iso(end),
            "duration": round(end - start, 3),
        }
        if no_log:
            record["no_log"] = True
        elif status in ("failed", "ignored", "unreachable") and res.get("msg"):
            record["msg"] = mask_message(res["msg"])
        self._write(record)

    def v2_runner_on_ok(self, result):
        self._safely(self._record, result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._safely(self._record, result, "failed")

    def v2_runner_on_skipped(self, result):
        self._safely(self._record, result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._safely(self._record, result, "unreachable")

    # -- end of run ----------------------------------------------------------
    def _close(self, status, stats=None):
        if self.finished:
            return
        self.finished = True
        now = time.time()
        for (_unused, host), (start, task) in sorted(self.running.items(), key=lambda kv: kv[1][0]):
            self._write({"event": "task", "host": host, "task": task.get_name().strip(), "play": self.play,
                         "role": task._role.get_name() if getattr(task, "_role", None) else None,
                         "handler": type(task).__name__ == "Handler", "action": getattr(task, "action", None),
                         "status": "interrupted", "changed": False, "start": utc_iso(start),
                         "end": utc_iso(now), "duration": round(now - start, 3)})
        self.running.clear()
        record = {"event": "run_end", "time": utc_iso(now), "status": status, "counts": self.counts}
        if stats is not None:
            record["hosts"] = {h: stats.summarize(h) for h in sorted(stats.processed)}
        self._write(record)

    def v2_playbook_on_stats(self, stats):
        def close():
            failed = any(s.get("failures") or s.get("unreachable")
                         for s in (stats.summarize(h) for h in stats.processed))
            self._close("failed" if failed else "ok", stats)
        self._safely(close)

    def _at_exit(self):
        if self.path is not None and not self.finished:
            self._safely(self._close, "interrupted")
