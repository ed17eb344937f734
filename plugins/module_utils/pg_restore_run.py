# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Restore a ``pg_dump -Fc`` archive without losing the live database.

Strategy ``beside`` (default): restore into a scratch database next to the live one with
``pg_restore -j N --exit-on-error``, validate it (the runbook's 数据验证 queries plus row
counts against the dump's table of contents and metadata), then swap by rename and keep the
old database as ``<db>_pre_restore_<UTC>``. Strategy ``in_place`` (short on disk) is the
runbook's ``pg_restore -c`` after a safety dump of the live database.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import threading

from ansible_collections.healthbutler.recovery.plugins.module_utils.pitr_exec import ExecError, Step
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import quote_ident, quote_literal
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError

COUNTS_SQL = """
SELECT coalesce(json_object_agg(t.name, t.n ORDER BY t.name), '{}'::json) FROM (
  SELECT format('%I.%I', schemaname, tablename) AS name,
         (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', schemaname, tablename),
                                              false, true, '')))[1]::text::bigint AS n
    FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')) t
"""

# The runbook's 数据验证: user count, the newest health_data rows, size per public table.
VALIDATION_SQL = """
SELECT json_build_object(
  'users', (SELECT count(*) FROM users),
  'latest_health_data', (SELECT coalesce(json_agg(r), '[]'::json) FROM (
      SELECT id, user_id, metric, created_at FROM health_data ORDER BY created_at DESC LIMIT 10) r),
  'table_sizes', (SELECT coalesce(json_object_agg(table_name,
      pg_size_pretty(pg_total_relation_size(quote_ident(table_name)))), '{}'::json)
      FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'))
"""


def sha256_file(path, chunk=1024 * 1024):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_sha256(path):
    """The sha256 in the dump's ``.sha256`` sidecar, or None without one."""
    sidecar = path + ".sha256"
    if not os.path.exists(sidecar):
        return None
    with open(sidecar, encoding="utf-8") as fh:
        return (fh.read().split() or [""])[0]


class ChecksumThread(threading.Thread):
    """sha256 of the dump computed beside the restore; ``problem()`` (after the restore) gates the swap."""

    def __init__(self, path, expected):
        super().__init__(daemon=True)
        self.path, self.expected, self.actual, self.error = path, expected, None, None

    def run(self):
        try:
            self.actual = sha256_file(self.path)
        except OSError as exc:
            self.error = str(exc)

    def problem(self):
        self.join()
        if self.error:
            return "could not read %s for its checksum: %s" % (self.path, self.error)
        if self.actual != self.expected:
            return "dump %s does not match its checksum (sha256 %s, expected %s)" % (
                self.path, self.actual, self.expected)
        return None


def inspect_dump(path, checksum=True):
    """Existence, checksum sidecar and metadata of a dump; ``problems`` lists what is wrong.

    ``checksum=False`` leaves the sha256 to the caller (``checksum`` is then ``deferred`` when there is a sidecar).
    """
    info = {"path": path, "exists": os.path.isfile(path), "problems": [], "meta": None, "checksum": "missing"}
    if not info["exists"]:
        info["problems"].append("dump %s does not exist" % path)
        return info
    info["size"] = os.path.getsize(path)
    if info["size"] == 0:
        info["problems"].append("dump %s is empty" % path)
    sidecar, expected = path + ".sha256", expected_sha256(path)
    if expected is not None and not checksum:
        info["checksum"] = "deferred"
    elif expected is not None:
        actual = sha256_file(path)
        info["checksum"] = "ok" if actual == expected else "mismatch"
        if actual != expected:
            info["problems"].append("dump %s does not match its checksum %s (sha256 %s, expected %s)"
                                    % (path, sidecar, actual, expected))
    meta_path = path + ".json"
    if os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as fh:
            info["meta"] = json.load(fh)
    return info


class PreflightError(Exception):
    """A pre-flight refusal (nothing was changed); ``msg`` says why."""

    def __init__(self, msg):
        super().__init__(msg)
        self.msg = msg


def resolve_dump(dump, backup_dir):
    """``latest``, a file name under ``<backup_dir>/dumps``, or a path."""
    if dump == "latest":
        found = sorted(glob.glob(os.path.join(backup_dir, "dumps", "*.dump")))
        return found[-1] if found else os.path.join(backup_dir, "dumps", "<none>.dump")
    if os.sep in dump:
        return dump
    return os.path.join(backup_dir, "dumps", dump)


def preflight(runner, server, plan, backup_dir, db, defer_checksum=False, count_rows=True):
    """Read-only checks of a dump restore, filling ``plan``; returns ``(info, rows_before)``. Raises PreflightError.

    The dump exists and matches its sha256 (or, with ``defer_checksum``, leaves that to a ChecksumThread beside
    the restore); its TOC is listed, after a full read unless the restore into the scratch database will be one
    (beside, checksum vouched); the database exists, the run's names are free, the disk holds the copies.
    """
    dump, names, strategy = plan["dump"], plan["databases"], plan["strategy"]
    info = inspect_dump(dump, checksum=not defer_checksum)
    plan["checksum"], plan["meta"] = info["checksum"], info["meta"]
    if info["problems"]:
        found = sorted(os.path.basename(f) for f in glob.glob(os.path.join(backup_dir, "dumps", "*.dump")))
        raise PreflightError("; ".join(info["problems"]) + "; dumps in %s/dumps: %s"
                             % (backup_dir, ", ".join(found) or "none"))
    try:
        vouched = strategy == "beside" and info["checksum"] in ("ok", "deferred")
        plan["read_in_full"] = ("by the restore into %s, before anything live changes (checksum ok)" % names["scratch"]
                                if vouched else "pre-flight")
        plan["toc_tables"] = read_dump(runner, server.bin("pg_restore"), dump, full=not vouched)
        if not database_exists(server, db):
            raise PreflightError("database %s does not exist on port %s" % (db, server.port))
        taken = [n for n in names.values() if database_exists(server, n)]
        if taken:
            raise PreflightError("database(s) %s already exist; use a new run_stamp" % ", ".join(taken))
        live = server.query("SELECT json_build_object('size', pg_database_size(%s), 'data_dir', "
                            "current_setting('data_directory'))" % quote_literal(db))
        rows_before = counts(server, db) if count_rows else None
    except (ExecError, CommandError) as exc:
        raise PreflightError(getattr(exc, "msg", str(exc))) from None
    st = os.statvfs(live["data_dir"] if os.path.isdir(live["data_dir"]) else "/")
    free = st.f_bavail * st.f_frsize
    needed = (live["size"] if strategy == "beside" else 0) + info["size"] * 2 + 64 * 2 ** 20
    plan["disk"] = {"free": free, "needed": needed, "live_db_size": live["size"], "dump_size": info["size"]}
    if free < needed:
        hint = "; strategy in_place needs less" if strategy == "beside" else ""
        raise PreflightError("not enough free disk for a %s restore: %d MB free, %d MB needed%s" % (
            strategy, free // 2 ** 20, needed // 2 ** 20, hint))
    return info, rows_before


def read_dump(runner, pg_restore, path, full=True):
    """TOC table names of the archive, after a full read when ``full`` (``--list`` alone passes a truncated dump)."""
    if full:
        res = runner.run([pg_restore, "-f", os.devnull, path])
        if res.rc != 0:
            raise ExecError("dump %s does not read back: %s" % (path, res.stderr.strip()[-500:]), step="pre-flight")
    toc = runner.check([pg_restore, "--list", path], what="pg_restore --list")
    return toc_tables(toc.stdout)


def toc_tables(text):
    """``schema.table`` of every TABLE DATA entry in a ``pg_restore --list``."""
    tables = []
    for line in text.splitlines():
        if line.startswith(";") or " TABLE DATA " not in line:
            continue
        parts = line.split(" TABLE DATA ", 1)[1].split()
        if len(parts) >= 2:
            tables.append("%s.%s" % (parts[0], parts[1]))
    return sorted(tables)


def compare_counts(toc, meta_tables, restored):
    """Mismatches between the dump (TOC + metadata row counts) and the restored database."""
    problems = []
    for table in toc:
        if table not in restored:
            problems.append("table %s is in the dump but not in the restored database" % table)
        elif meta_tables and table in meta_tables and int(meta_tables[table]) != int(restored[table]):
            problems.append("table %s has %s rows, the dump's metadata says %s"
                            % (table, restored[table], meta_tables[table]))
    return problems


def counts(server, dbname):
    return server.query(COUNTS_SQL, dbname=dbname, timeout=600)


def validate(server, dbname, toc, meta):
    """Runbook validation + row counts against the dump; raises ExecError on a mismatch."""
    report = server.query(VALIDATION_SQL, dbname=dbname)
    report["rows"] = counts(server, dbname)
    report["problems"] = compare_counts(toc, (meta or {}).get("tables") or {}, report["rows"])
    if report["problems"]:
        raise ExecError("validation of the restored database failed: " + "; ".join(report["problems"]),
                        step="validate", details={"validation": report})
    return report


def database_exists(server, name):
    return server.query("SELECT to_json(EXISTS (SELECT 1 FROM pg_database WHERE datname = %s))"
                        % quote_literal(name))


def terminate(server, name):
    server.query("SELECT to_json(count(pg_terminate_backend(pid))) FROM pg_stat_activity "
                 "WHERE datname = %s AND pid <> pg_backend_pid()" % quote_literal(name))


def rename(server, old, new):
    terminate(server, old)
    server.query("ALTER DATABASE %s RENAME TO %s; SELECT to_json(1)" % (quote_ident(old), quote_ident(new)))


def pg_restore_argv(server, dump, dbname, jobs, clean=False):
    argv = [server.bin("pg_restore"), "-h", server.socket_dir, "-p", str(server.port), "-d", dbname,
            "-j", str(int(jobs)), "--exit-on-error"]
    if clean:
        argv += ["--clean", "--if-exists"]
    return server.as_user(argv + [dump])


def restore_beside(runner, server, dump, db, names, jobs, toc, meta, timeout=None, checksum=None):
    """Restore into ``names['scratch']``, validate, swap; keep the live db as ``names['preserved']``.

    The rows before are the pre-flight's, counted while the app still served; the restore into the scratch
    database is itself a full read of the dump with ``--exit-on-error``, before anything live is touched.
    ``checksum`` (a started ChecksumThread) runs beside the restore and gates the swap.
    """
    steps, state = [], {"scratch": False, "swapped": False}
    result = {"steps": steps, "strategy": "beside", "preserved_db": names["preserved"]}
    try:
        with Step(steps, "create the scratch database %s" % names["scratch"]):
            owner = server.query("SELECT to_json(pg_get_userbyid(datdba)) FROM pg_database WHERE datname = %s"
                                 % quote_literal(db))
            server.query("CREATE DATABASE %s OWNER %s TEMPLATE template0; SELECT to_json(1)"
                         % (quote_ident(names["scratch"]), quote_ident(owner)))
            state["scratch"] = True
        with Step(steps, "pg_restore -j %s --exit-on-error into %s" % (jobs, names["scratch"])):
            runner.check(pg_restore_argv(server, dump, names["scratch"], jobs), timeout=timeout, what="pg_restore")
        with Step(steps, "validate %s" % names["scratch"]):
            result["validation"] = validate(server, names["scratch"], toc, meta)
        if checksum is not None:
            with Step(steps, "sha256 of the dump (computed during the restore)"):
                problem = checksum.problem()
                if problem:
                    raise ExecError(problem, step="checksum")
        with Step(steps, "swap by rename (keep %s)" % names["preserved"]):
            server.query("ALTER DATABASE %s WITH ALLOW_CONNECTIONS false; SELECT to_json(1)" % quote_ident(db))
            try:
                rename(server, db, names["preserved"])
                state["swapped"] = True
                rename(server, names["scratch"], db)
            finally:
                server.query("ALTER DATABASE %s WITH ALLOW_CONNECTIONS true; SELECT to_json(1)"
                             % quote_ident(names["preserved"] if state["swapped"] else db))
        result["rows_after"] = result["validation"]["rows"]
        return result
    except (ExecError, CommandError, OSError, ValueError) as exc:
        failure = exc if isinstance(exc, ExecError) else ExecError(getattr(exc, "msg", str(exc)))
        failure.step = failure.step or (steps[-1]["step"] if steps else None)
        failure.details["steps"] = steps
        failure.details["rollback"] = rollback_beside(server, db, names, state)
        raise failure from None


def rollback_beside(server, db, names, state=None):
    """Undo a beside-restore: the preserved database back under its name, the scratch one dropped
    (it only ever held our partial copy) or, once it had been swapped in, kept as ``failed``."""
    actions = []
    try:
        if database_exists(server, names["preserved"]):
            if database_exists(server, db):
                rename(server, db, names["failed"])
                actions.append("kept the restored database as %s" % names["failed"])
            rename(server, names["preserved"], db)
            actions.append("renamed %s back to %s" % (names["preserved"], db))
        if database_exists(server, names["scratch"]):
            terminate(server, names["scratch"])
            server.query("DROP DATABASE %s; SELECT to_json(1)" % quote_ident(names["scratch"]))
            actions.append("dropped the partial scratch database %s" % names["scratch"])
        return {"ok": True, "actions": actions}
    except (CommandError, ValueError) as exc:
        actions.append("rollback FAILED: %s" % getattr(exc, "msg", exc))
        return {"ok": False, "actions": actions}


def restore_in_place(runner, server, dump, db, safety_dump, jobs, toc, meta, timeout=None):
    """The runbook's ``pg_restore -c``, after a safety dump; on failure the safety dump goes back in."""
    steps = []
    result = {"steps": steps, "strategy": "in_place", "safety_dump": safety_dump}
    try:
        with Step(steps, "safety dump of %s" % db):
            runner.check(server.as_user([server.bin("pg_dump"), "-h", server.socket_dir, "-p", str(server.port),
                                         "-Fc", "-f", safety_dump, db]), timeout=timeout, what="safety pg_dump")
    except (ExecError, CommandError) as exc:
        raise ExecError("safety dump failed, nothing was changed: %s" % getattr(exc, "msg", exc),
                        step="safety dump", details={"steps": steps}) from None
    try:
        with Step(steps, "pg_restore -c -j %s --exit-on-error into %s" % (jobs, db)):
            terminate(server, db)
            runner.check(pg_restore_argv(server, dump, db, jobs, clean=True), timeout=timeout, what="pg_restore -c")
        with Step(steps, "validate %s" % db):
            result["validation"] = validate(server, db, toc, meta)
        result["rows_after"] = result["validation"]["rows"]
        return result
    except (ExecError, CommandError, ValueError) as exc:
        failure = exc if isinstance(exc, ExecError) else ExecError(getattr(exc, "msg", str(exc)))
        failure.step = failure.step or steps[-1]["step"]
        failure.details["steps"] = steps
        failure.details["rollback"] = rollback_in_place(runner, server, db, safety_dump, jobs)
        raise failure from None


def rollback_in_place(runner, server, db, safety_dump, jobs):
    try:
        terminate(server, db)
        runner.check(pg_restore_argv(server, safety_dump, db, jobs, clean=True), what="pg_restore of the safety dump")
        return {"ok": True, "actions": ["restored the safety dump %s into %s" % (safety_dump, db)]}
    except CommandError as exc:
        return {"ok": False, "actions": ["rollback FAILED: %s; the safety dump is %s" % (exc.msg, safety_dump)]}
