# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""The intent journal of a destructive run, and the lock that keeps a second run off the same host.

On the host a run changes: ``<lock_dir>/<kind>.lock`` names the run holding the host, and
``<run_dir>/run.json`` holds the run's inputs, the facts it needs to be finished by someone else
(plan, preserved paths, the app's state before it, the async job) and the steps it reached.
A run whose controller process is gone is *interrupted*: the next run of the same kind finishes or
aborts it instead of starting a second recovery on top of it.
"""

from __future__ import absolute_import, division, print_function

import datetime
import json
import os
import signal
import time

from ansible_collections.healthbutler.recovery.plugins.module_utils.backup_catalog import read_json

RECORD = "run.json"


class JournalError(Exception):
    """A refusal, with the message an operator reads."""


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json(path, data, exclusive=False):
    """Write ``data`` atomically (``exclusive``: fail with FileExistsError when ``path`` exists)."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def lock_path(lock_dir, kind):
    return os.path.join(lock_dir, "%s.lock" % kind)


def open_runs(lock_dir):
    """``{stamp: kind}`` of the runs whose lock is held and whose journal has not ended (interrupted or live)."""
    out = {}
    if not lock_dir or not os.path.isdir(lock_dir):
        return out
    for name in sorted(os.listdir(lock_dir)):
        holder = read_json(os.path.join(lock_dir, name)) if name.endswith(".lock") else None
        record = read_json(os.path.join(holder["run_dir"], RECORD)) if holder and holder.get("run_dir") else None
        if record and record.get("state") != "ended" and holder.get("stamp"):
            out[holder["stamp"]] = holder.get("kind") or name[:-len(".lock")]
    return out


def processes():
    """(pid, argv) of every process on this host."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as fh:
                argv = fh.read().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        yield int(name), argv


def job_pids(jid):
    """Processes of an async job: ansible's async_wrapper runs as ``async_wrapper <id> ...`` and names the job
    ``<id>.<pid>``, so its daemon and watcher carry ``<id>`` as their first argument."""
    base = (jid or "").rsplit(".", 1)[0]
    if not base:
        return []
    return [pid for pid, argv in processes()
            if len(argv) > 2 and base in argv[1:3] and any("async_wrapper" in arg for arg in argv[:2])
            and pid != os.getpid()]


def job_state(job):
    """What became of a recorded async job: running, finished, failed or lost (gone without a result)."""
    if not job or not job.get("jid"):
        return {"state": "none"}
    result = read_json(job.get("results_file") or "")
    # async_wrapper writes {"started": 1, "finished": 0} while the module runs, then the module's own result
    # (no "started" key): that is how async_status tells a finished job too.
    if result is not None and (result.get("finished") or "started" not in result):
        failed = bool(result.get("failed")) or result.get("rc", 0) not in (0, None)
        return {"state": "failed" if failed else "finished", "msg": result.get("msg", "")}
    if job_pids(job["jid"]):
        return {"state": "running"}
    return {"state": "lost", "msg": "its process is gone and it left no result"}


def stop_job(job, grace=10, sleep=time.sleep):
    """Stop a running async job (TERM, then KILL after ``grace`` seconds); the pids signalled."""
    pids = job_pids((job or {}).get("jid"))
    groups = set()
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))  # the wrapper's session: the module and what it started (pg_restore)
        except OSError:
            pass
    groups.discard(os.getpgrp())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for group in groups:
            try:
                os.killpg(group, sig)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and job_pids(job["jid"]):
            sleep(0.2)
        if not job_pids(job["jid"]):
            break
    return pids


def describe(holder, record):
    steps = [s["name"] for s in (record or {}).get("steps", [])]
    ctl = holder.get("controller") or {}
    return "run %s (started %s from %s, pid %s; last step: %s)" % (
        holder.get("stamp"), holder.get("since"), ctl.get("host", "?"), ctl.get("pid", "?"),
        steps[-1] if steps else "none")


def inspect(lock_dir, kind, controller, live, takeover=None, abort=None, inputs=None):
    """Decide what this run is: ``new``, or ``resume``/``abort`` of an interrupted run. Raises JournalError."""
    wanted = abort or takeover
    holder = read_json(lock_path(lock_dir, kind))
    record = read_json(os.path.join(holder["run_dir"], RECORD)) if holder and holder.get("run_dir") else None
    if holder and (record is None or record.get("state") == "ended"):
        holder = record = None  # a stale lock: its run finished or never wrote its intent
    if not holder:
        if wanted:
            raise JournalError("%s=%s: no interrupted %s run holds this host (nothing to %s)" % (
                "abort" if abort else "takeover", wanted, kind, "abort" if abort else "take over"))
        return {"decision": "new"}
    ctl = holder.get("controller") or {}
    alive = ctl.get("host") == controller.get("host") and "%s:%s" % (ctl.get("pid"), ctl.get("start")) in live
    if alive:
        raise JournalError("another %s is running on this host: %s. Wait for it to end; it holds the lock %s"
                           % (kind, describe(holder, record), lock_path(lock_dir, kind)))
    if wanted and wanted != holder["stamp"]:
        raise JournalError("%s=%s: the interrupted run on this host is %s, not %s" % (
            "abort" if abort else "takeover", wanted, holder["stamp"], wanted))
    if ctl.get("host") != controller.get("host") and not wanted:
        raise JournalError(
            "%s holds this host from another controller, so this one cannot tell whether it still runs. If it "
            "is gone, finish it with -e takeover=%s or undo it with -e abort=%s" % (
                describe(holder, record), holder["stamp"], holder["stamp"]))
    return {"decision": "abort" if abort else "resume", "holder": holder, "record": record,
            "job": job_state(record.get("facts", {}).get("job")), "done": [s["name"] for s in record["steps"]],
            "mismatch": [] if abort else input_mismatch(record.get("inputs") or {}, inputs or {})}


def begin(lock_dir, kind, run_dir, stamp, inputs, controller, facts=None, resume_of=None):
    """Take the lock and write the intent (or, resuming, take over the interrupted run's record)."""
    os.makedirs(lock_dir, mode=0o755, exist_ok=True)
    os.makedirs(run_dir, mode=0o755, exist_ok=True)
    holder = {"stamp": stamp, "kind": kind, "run_dir": run_dir, "controller": controller, "since": utc_now()}
    path = lock_path(lock_dir, kind)
    record_path = os.path.join(run_dir, RECORD)
    if resume_of:
        current = read_json(path) or {}
        if current.get("stamp") != resume_of:
            raise JournalError("the lock %s changed meanwhile (now %s), not taking over %s"
                               % (path, current.get("stamp"), resume_of))
        record = read_json(record_path)
        record.setdefault("controllers", []).append(controller)
        record["controller"] = controller
        holder["since"] = current.get("since", holder["since"])
        write_json(path, holder)
        _save(record_path, record, "taken over by %s pid %s" % (controller.get("host"), controller.get("pid")))
        return record
    stale = read_json(path)
    if stale:
        stale_record = read_json(os.path.join(stale.get("run_dir", ""), RECORD)) or {}
        if stale_record.get("state") != "ended" and stale_record:
            raise JournalError("the lock %s is held by %s" % (path, describe(stale, stale_record)))
        os.unlink(path)
    try:
        write_json(path, holder, exclusive=True)
    except FileExistsError as exc:
        raise JournalError("the lock %s was taken meanwhile by %s"
                           % (path, (read_json(path) or {}).get("stamp"))) from exc
    record = {"kind": kind, "stamp": stamp, "state": "running", "status": None, "inputs": inputs,
              "controller": controller, "controllers": [controller], "started": utc_now(), "steps": [],
              "facts": facts or {}}
    _save(record_path, record, "intent written, lock %s taken" % path)
    return record


def _save(record_path, record, note):
    record["updated"] = utc_now()
    record.setdefault("notes", []).append("%s %s" % (record["updated"], note))
    write_json(record_path, record)


def step(run_dir, name, facts=None):
    """Record that ``name`` (a step name, or a list of names reached together) is done, in one write,
    merging ``facts`` into what the run remembers."""
    record_path = os.path.join(run_dir, RECORD)
    record = read_json(record_path)
    if record is None:
        raise JournalError("no run record at %s" % record_path)
    names = [name] if isinstance(name, str) else list(name)
    record["facts"].update(facts or {})
    now = utc_now()
    record["steps"].extend({"name": one, "at": now} for one in names)
    _save(record_path, record, "step %s" % ", ".join(names))
    return record


def write_files(run_dir, files, mode=0o644):
    """Write ``files`` (plain file name -> text) into ``run_dir``, each atomically (the run's reports)."""
    for name, text in sorted((files or {}).items()):
        if not name or name != os.path.basename(name) or name in (RECORD, ".", "..") or name.endswith(".tmp"):
            raise JournalError("a record file must be a plain file name other than %s, got %r" % (RECORD, name))
        path = os.path.join(run_dir, name)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
        os.chmod(tmp, mode)
        os.replace(tmp, path)


def end(lock_dir, kind, run_dir, status, files=None):
    """Write ``files`` (the run's reports), then close the record with ``status`` and release the lock if this run
    holds it: one call, so a record exists whenever the journal says ended."""
    write_files(run_dir, files)
    record_path = os.path.join(run_dir, RECORD)
    record = read_json(record_path) or {}
    record.update(state="ended", status=status, ended=utc_now())
    _save(record_path, record, "ended: %s" % status)
    path = lock_path(lock_dir, kind)
    if (read_json(path) or {}).get("stamp") == record.get("stamp"):
        os.unlink(path)
    return record


def input_mismatch(recorded, given):
    """The inputs of a re-run that differ from the interrupted run's, as 'name: first -> now' lines."""
    return ["%s: %s (interrupted run) vs %s (this run)" % (k, json.dumps(recorded.get(k)), json.dumps(given.get(k)))
            for k in sorted(set(recorded) | set(given)) if recorded.get(k) != given.get(k)]
