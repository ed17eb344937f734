# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""The steps of rows mode over real servers (``check``, ``plan``, ``apply``, ``export``).

Each takes a ``CommandRunner`` and the module's parameters and returns the module's result. Live and the
copy are reached as ``PgServer`` (psql over the socket as the cluster's OS user). Files go into the run
directory: ``rows-plan.json`` (the plan with its rows; ``apply`` reads it back), ``rows-plan.sql``,
``rows-<table>.csv``, ``rows-applied.json``.
"""

from __future__ import annotations

import json
import os

from ansible_collections.healthbutler.recovery.plugins.module_utils import pg_rows
from ansible_collections.healthbutler.recovery.plugins.module_utils.pitr_exec import PgServer
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError, RecoveryError

PLAN_FILE = "rows-plan.json"


def _live(runner, p):
    return PgServer(runner, p["pg_bindir"], p["pg_os_user"], "", p["pg_port"], p["pg_socket_dir"])


def _copy(runner, p):
    return PgServer(runner, p["pg_bindir"], p["pg_os_user"], os.path.join(p["copy_dir"], "data"), p["copy_port"],
                    p["copy_dir"])


def _query(server, db, timeout=600):
    def query(sql):
        try:
            return server.query(sql, dbname=db, timeout=timeout)
        except CommandError as exc:
            raise RecoveryError("psql on port %s: %s" % (server.port, exc.msg)) from exc
    return query


def _specs(runner, p):
    specs = pg_rows.parse_tables(p["tables"], p.get("where"), p.get("mode") or "missing")
    return pg_rows.describe(_query(_live(runner, p), p["db_name"]), specs)


def check(runner, p):
    specs = _specs(runner, p)
    return {"changed": False, "tables": [{k: s.get(k) for k in ("given", "qualified", "key", "key_index", "parents",
                                                                "where")} for s in specs]}


def _write(path, text):
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def _slug(table):
    return table.replace(".", "_")


def plan(runner, p):
    specs = _specs(runner, p)
    query_copy = _query(_copy(runner, p), p["db_name"])
    copy_info = query_copy(pg_rows.describe_sql(specs))
    copy_columns = {s["qualified"]: (c.get("columns") if c.get("exists") else None) for s, c in zip(specs, copy_info)}
    missing = [s["given"] for s in specs if copy_columns[s["qualified"]] is None]
    if missing:
        raise RecoveryError("tables: %s not in the copy: the table did not exist at the target" % ", ".join(missing),
                            field="tables")
    the_plan = pg_rows.build_plan(query_copy, _query(_live(runner, p), p["db_name"]), specs, p["mode"], copy_columns)
    os.makedirs(p["run_dir"], exist_ok=True)
    files = [_write(os.path.join(p["run_dir"], PLAN_FILE), json.dumps(dict(the_plan, stamp=p["run_stamp"])))]
    files.append(_write(os.path.join(p["run_dir"], "rows-plan.sql"),
                        pg_rows.apply_sql(the_plan, p["run_stamp"], p.get("disable_triggers"))))
    for table in the_plan["tables"]:
        files.append(_write(os.path.join(p["run_dir"], "rows-%s.csv" % _slug(table["table"])),
                            pg_rows.csv_text(table)))
    for path in files:
        os.chmod(path, 0o600)  # rows of the app's database
    return {"changed": False, "plan": pg_rows.summary(the_plan),
            "plan_lines": pg_rows.plan_lines(the_plan, p["run_stamp"]),
            "files": files}


def apply(runner, p):
    with open(os.path.join(p["run_dir"], PLAN_FILE), encoding="utf-8") as fh:
        the_plan = json.load(fh)
    query_live = _query(_live(runner, p), p["db_name"], timeout=3600)
    tables = [t["table"] for t in the_plan["tables"]]
    before = query_live(pg_rows.counts_sql(tables))
    if not the_plan["totals"]["insert"] and not the_plan["totals"]["update"]:
        return {"changed": False, "plan": pg_rows.summary(the_plan), "rows_before": before, "rows_after": before,
                "applied": {"tables": [], "preserved_tables": {}, "conflicts": 0},
                "verification": {"ok": True, "checked": 0, "differ": []}}
    sql = pg_rows.apply_sql(the_plan, the_plan.get("stamp") or p["run_stamp"], p.get("disable_triggers"))
    result = query_live(sql)
    applied = pg_rows.outcome(the_plan, result)
    check_result = pg_rows.verify(query_live, the_plan, applied, pg_rows.expected_hashes(the_plan, applied))
    after = query_live(pg_rows.counts_sql(tables))
    out = {"changed": True, "plan": pg_rows.summary(the_plan), "applied": applied, "verification": check_result,
           "rows_before": before, "rows_after": after}
    os.chmod(_write(os.path.join(p["run_dir"], "rows-applied.json"), json.dumps(out, indent=1)), 0o600)
    if not check_result["ok"]:
        differ = check_result["differ"]
        raise RecoveryError("applied, but %d key(s) do not hold the copy's values after commit: %s (live rows "
                            "that were overwritten are in %s)" % (len(differ), differ[:5],
                                                                  ", ".join(applied["preserved_tables"]) or "no table"),
                            **out)
    return out


def export(runner, p):
    specs = pg_rows.parse_tables(p["tables"], p.get("where"), p.get("mode") or "missing")
    copy = _copy(runner, p)
    os.makedirs(p["run_dir"], exist_ok=True)
    files = []
    for spec in specs:
        base = os.path.join(p["run_dir"], "export-%s" % _slug(spec["qualified"]))
        if p["export_format"] == "dump":
            if spec["where"]:
                raise RecoveryError("where: pg_dump -t exports whole tables; use export=csv with where",
                                    field="where")
            argv = copy.as_user([copy.bin("pg_dump"), "-h", copy.socket_dir, "-p", str(copy.port), "-Fc",
                                 "--data-only", "-t", pg_rows.rel(spec), "-f", base + ".dump", p["db_name"]])
            runner.check(argv, what="pg_dump of the copy")
            files.append(base + ".dump")
            continue
        where = " WHERE (%s)" % spec["where"] if spec["where"] else ""
        sql = "COPY (SELECT * FROM %s%s) TO STDOUT WITH (FORMAT csv, HEADER)" % (pg_rows.rel(spec), where)
        res = runner.check(copy.psql_argv(p["db_name"]), data=pg_rows.SESSION_SQL + sql + ";\n",
                           what="COPY from the copy")
        files.append(_write(base + ".csv", res.stdout))
        os.chmod(base + ".csv", 0o600)
    return {"changed": False, "files": files}
