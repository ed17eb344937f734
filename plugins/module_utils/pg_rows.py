# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Rows mode: compare a point-in-time copy with live by key, plan, apply in one transaction, verify.

Every function takes ``query(sql) -> JSON value`` callables (``PgServer.query`` bound to a database):
one for the copy (the scratch instance restored to the target) and one for live. Rows travel as
JSON (``row_to_json`` out, ``json_populate_record`` in), so PostgreSQL does every type conversion.
A row is compared by ``md5(row::text)`` under fixed session settings (``SESSION_SQL``), identical on
both sides.

Rules (docs/recover-db.md, "rows mode"):

* a table needs a primary key, or a unique index on NOT NULL plain columns; a keyless table is refused
  before anything is restored;
* ``missing`` = rows of the copy whose key is absent live; ``changed`` = rows in both that differ;
  ``both`` = the two;
* apply is one transaction, parents before children (foreign keys); the live rows an update
  overwrites are saved first into ``<table>_pre_rows_<UTC>``; a key that reappeared live (insert) or
  changed again live (update) since the plan is a conflict: reported and skipped, never overwritten;
  sequences are moved forward past the restored keys, never back.
"""

from __future__ import annotations

import csv
import io
import json
import re

from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import quote_ident, quote_literal
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import RecoveryError

MODES = ("missing", "changed", "both")
SAMPLE = 5
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
SESSION_SQL = ("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
               "SET extra_float_digits = 1; SET bytea_output = 'hex';\n")


class RowsError(RecoveryError):
    """A rows-mode request refused or failed; ``field`` names the input as the user typed it."""

    def __init__(self, msg, field=None, **details):
        super().__init__(msg, field=field, **details)
        self.field = field


# -- inputs ---------------------------------------------------------------------------------------

def parse_tables(tables, where=None, mode="missing"):
    """``tables`` (a name, a comma list or a list; ``schema.table`` allowed) and ``where`` → table specs.

    Returns ``[{"schema", "name", "qualified", "where"}]`` in the order given.
    """
    if mode not in MODES:
        raise RowsError("mode %s is not one of %s (missing: rows absent live; changed: rows that differ; "
                        "both)" % (json.dumps(mode), ", ".join(MODES)), field="mode")
    if isinstance(tables, str):
        tables = [t for t in (p.strip() for p in tables.split(",")) if t]
    if not tables or not isinstance(tables, list):
        raise RowsError("tables is required in rows mode: one or more table names, e.g. "
                        "-e '{\"tables\": [\"health_data\", \"public.users\"]}'", field="tables")
    where = where or {}
    if not isinstance(where, dict):
        raise RowsError("where must be a dict of table: predicate, e.g. {\"health_data\": \"user_id = 42\"}; got %s"
                        % json.dumps(where, default=str), field="where")
    specs, seen = [], set()
    for raw in tables:
        parts = str(raw).split(".")
        if len(parts) > 2 or not all(_NAME.match(p) for p in parts):
            raise RowsError("tables: %s is not a table name like health_data or public.health_data"
                            % json.dumps(raw, default=str), field="tables")
        schema, name = (parts if len(parts) == 2 else ["public", parts[0]])
        qualified = "%s.%s" % (schema, name)
        if qualified in seen:
            raise RowsError("tables: %s is listed twice" % raw, field="tables")
        seen.add(qualified)
        specs.append({"schema": schema, "name": name, "qualified": qualified, "given": str(raw), "where": None})
    by_given = {s["given"]: s for s in specs}
    by_given.update({s["qualified"]: s for s in specs})
    for key, predicate in where.items():
        if key not in by_given:
            raise RowsError("where: %s is not one of tables (%s)" % (json.dumps(key), ", ".join(by_given)),
                            field="where")
        if not isinstance(predicate, str) or not predicate.strip() or ";" in predicate:
            raise RowsError("where.%s must be one SQL predicate on the copy, e.g. \"user_id = 42\" (no ';'); "
                            "got %s" % (key, json.dumps(predicate, default=str)), field="where")
        by_given[key]["where"] = predicate.strip()
    return specs


def rel(spec):
    return "%s.%s" % (quote_ident(spec["schema"]), quote_ident(spec["name"]))


# -- live schema: keys, columns, sequences, foreign keys ----------------------------------------

def describe_sql(specs):
    names = ", ".join(quote_literal(rel(s)) for s in specs)
    return SESSION_SQL + """
SELECT coalesce(json_agg(json_build_object(
  'rel', t.q, 'exists', c.oid IS NOT NULL,
  'qualified', CASE WHEN c.oid IS NOT NULL THEN format('%%s.%%s', n.nspname, c.relname) END,
  'columns', (SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                'generated', a.attgenerated <> '', 'identity', a.attidentity::text,
                'sequence', pg_get_serial_sequence(format('%%I.%%I', n.nspname, c.relname), a.attname))
                ORDER BY a.attnum)
              FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  'keys', (SELECT json_agg(json_build_object('index', i.indexrelid::regclass::text, 'primary', i.indisprimary,
                'columns', (SELECT json_agg(a.attname ORDER BY k.ord)
                            FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum),
                'usable', i.indpred IS NULL AND i.indexprs IS NULL AND NOT EXISTS (
                   SELECT 1 FROM unnest(i.indkey) k(attnum) JOIN pg_attribute a ON a.attrelid = c.oid
                    AND a.attnum = k.attnum WHERE NOT a.attnotnull))
              ORDER BY i.indisprimary DESC, i.indexrelid::regclass::text)
           FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique),
  'parents', (SELECT json_agg(DISTINCT format('%%s.%%s', pn.nspname, pc.relname)) FROM pg_constraint f
              JOIN pg_class pc ON pc.oid = f.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
              WHERE f.conrelid = c.oid AND f.contype = 'f' AND f.confrelid <> c.oid),
  'rows', NULL) ORDER BY t.o), '[]')
FROM unnest(ARRAY[%s]) WITH ORDINALITY t(q, o)
LEFT JOIN pg_class c ON c.oid = to_regclass(t.q) AND c.relkind IN ('r', 'p')
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace;
""" % names


def choose_key(info):
    """The primary key, else the first unique index on NOT NULL plain columns, else None."""
    for key in info.get("keys") or []:
        if key["primary"] or key["usable"]:
            return key
    return None


def describe(query_live, specs):
    """Live tables with their key; raises RowsError naming every table that is missing or has no key."""
    infos = query_live(describe_sql(specs))
    problems = []
    for spec, info in zip(specs, infos):
        spec.update(columns=info.get("columns") or [], parents=info.get("parents") or [])
        if not info["exists"]:
            problems.append("%s does not exist live (a table or partitioned table)" % spec["given"])
            continue
        spec["qualified"] = info["qualified"]
        key = choose_key(info)
        if key is None:
            problems.append("%s has no primary key and no unique index on NOT NULL columns: rows mode matches "
                            "rows by key and cannot tell this table's rows apart" % spec["given"])
            continue
        spec["key"] = key["columns"]
        spec["key_index"] = key["index"]
    if problems:
        raise RowsError("tables: %s. Refused before anything was restored; for such a table use recover_mode=pitr "
                        "or dump, or add a key" % "; ".join(problems), field="tables",
                        tables=[s["given"] for s in specs])
    return specs


def dependency_order(specs):
    """Parents before children among the chosen tables (foreign keys); the given order otherwise."""
    names = [s["qualified"] for s in specs]
    by_name = {s["qualified"]: s for s in specs}
    done, order = set(), []
    pending = list(names)
    while pending:
        ready = [n for n in pending if all(p in done or p not in by_name for p in by_name[n]["parents"])]
        pick = ready[0] if ready else pending[0]  # a cycle: keep the given order
        order.append(by_name[pick])
        done.add(pick)
        pending.remove(pick)
    return order


# -- compare ----------------------------------------------------------------------------------------

def _key_obj(spec, alias):
    return "json_build_object(%s)" % ", ".join("%s, %s.%s" % (quote_literal(c), alias, quote_ident(c))
                                               for c in spec["key"])


def _key_join(spec, left, right):
    cols = ", ".join("%%s.%s" % quote_ident(c) for c in spec["key"])
    return "(%s) = (%s)" % (cols.replace("%s", left), cols.replace("%s", right))


def copy_digest_sql(spec):
    where = " WHERE (%s)" % spec["where"] if spec.get("where") else ""
    return SESSION_SQL + "SELECT coalesce(json_agg(json_build_array(%s, md5(t::text))), '[]') FROM %s t%s;" % (
        _key_obj(spec, "t"), rel(spec), where)


def _elements(entries):
    return "json_array_elements(%s::json)" % quote_literal(json.dumps(entries, separators=(",", ":")))


def live_digest_sql(spec, keys):
    """Hashes of the live rows for ``keys`` (key objects)."""
    return SESSION_SQL + (
        "SELECT coalesce(json_agg(json_build_array(%s, md5(t::text))), '[]') FROM %s x "
        "CROSS JOIN LATERAL json_populate_record(NULL::%s, x) k JOIN %s t ON %s;"
        % (_key_obj(spec, "t"), _elements(keys), rel(spec), rel(spec), _key_join(spec, "t", "k")))


def copy_rows_sql(spec, keys):
    return SESSION_SQL + (
        "SELECT coalesce(json_agg(json_build_array(%s, row_to_json(t))), '[]') FROM %s x "
        "CROSS JOIN LATERAL json_populate_record(NULL::%s, x) k JOIN %s t ON %s;"
        % (_key_obj(spec, "t"), _elements(keys), rel(spec), rel(spec), _key_join(spec, "t", "k")))


def canon(key):
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def diff(copy_pairs, live_pairs, mode):
    """``{"insert": [[key, copy hash]], "update": [[key, live hash, copy hash]], "same": n}``.

    ``copy_pairs`` and ``live_pairs`` are ``[key, hash]`` lists.
    """
    live = {canon(k): h for k, h in live_pairs}
    out = {"insert": [], "update": [], "same": 0}
    for key, digest in copy_pairs:
        have = live.get(canon(key))
        if have is None:
            if mode in ("missing", "both"):
                out["insert"].append([key, digest])
        elif have != digest:
            if mode in ("changed", "both"):
                out["update"].append([key, have, digest])
        else:
            out["same"] += 1
    return out


def compare_columns(spec, copy_columns):
    """Refuse when the copy's columns differ from live's (a schema change since the target)."""
    live = [(c["name"], c["type"]) for c in spec["columns"]]
    copy = [(c["name"], c["type"]) for c in copy_columns or []]
    if live != copy:
        raise RowsError("tables: %s has other columns in the copy than live (copy %s, live %s): rows mode "
                        "cannot carry rows across a schema change" % (spec["given"], copy, live), field="tables")


def plan_table(query_copy, query_live, spec, mode, sample=SAMPLE):
    """Compare one table; return its plan entry with the copy's rows to write."""
    copy_pairs = query_copy(copy_digest_sql(spec))
    keys = [k for k, _h in copy_pairs]
    live_pairs = query_live(live_digest_sql(spec, keys)) if keys else []
    found = diff(copy_pairs, live_pairs, mode)
    wanted = [k for k, _c in found["insert"]] + [k for k, _l, _c in found["update"]]
    rows = {canon(k): r for k, r in (query_copy(copy_rows_sql(spec, wanted)) if wanted else [])}
    return {
        "table": spec["qualified"], "given": spec["given"], "key": spec["key"], "where": spec.get("where"),
        "columns": spec["columns"], "parents": spec["parents"],
        "copy_rows": len(copy_pairs), "live_matches": len(live_pairs), "unchanged": found["same"],
        "insert": [{"k": k, "c": copy_h, "r": rows[canon(k)]} for k, copy_h in found["insert"]],
        "update": [{"k": k, "h": live_h, "c": copy_h, "r": rows[canon(k)]} for k, live_h, copy_h in found["update"]],
        "sample_insert": [i[0] for i in found["insert"][:sample]],
        "sample_update": [u[0] for u in found["update"][:sample]],
    }


def build_plan(query_copy, query_live, specs, mode, copy_columns=None):
    """Compare every table (parents first) and return the plan (no change anywhere)."""
    ordered = dependency_order(specs)
    tables = []
    for spec in ordered:
        if copy_columns is not None:
            compare_columns(spec, copy_columns.get(spec["qualified"]))
        tables.append(plan_table(query_copy, query_live, spec, mode))
    return {"mode": mode, "tables": tables,
            "totals": {"insert": sum(len(t["insert"]) for t in tables),
                       "update": sum(len(t["update"]) for t in tables)}}


def summary(plan):
    """The plan without the rows (for the console and the record)."""
    return {"mode": plan["mode"], "totals": plan["totals"], "tables": [
        {k: t[k] for k in ("table", "key", "where", "copy_rows", "unchanged", "sample_insert", "sample_update")}
        | {"insert": len(t["insert"]), "update": len(t["update"])} for t in plan["tables"]]}


def plan_lines(plan, stamp):
    lines = ["rows mode %s: %d row(s) to insert, %d to update, in one transaction, parents first: %s" % (
        plan["mode"], plan["totals"]["insert"], plan["totals"]["update"],
        " -> ".join(t["table"] for t in plan["tables"]))]
    for t in plan["tables"]:
        lines.append("%s (key %s%s): %d in the copy, %d unchanged; insert %d %s; update %d %s%s" % (
            t["table"], ",".join(t["key"]), ", where " + t["where"] if t["where"] else "", t["copy_rows"],
            t["unchanged"], len(t["insert"]), _sample(t["sample_insert"]), len(t["update"]),
            _sample(t["sample_update"]),
            "; live rows overwritten are saved first in %s" % preserved_name(t["table"], stamp) if t["update"] else ""))
    return lines


def _sample(keys):
    if not keys:
        return ""
    return "(e.g. %s)" % ", ".join(",".join(str(v) for v in k.values()) for k in keys)


# -- apply --------------------------------------------------------------------------------------------

def preserved_name(qualified, stamp):
    schema, name = qualified.split(".", 1)
    return "%s.%s" % (schema, "%s_pre_rows_%s" % (name, stamp.lower()))


def _writable(table):
    return [c for c in table["columns"] if not c["generated"]]


def _rel_of(qualified):
    schema, name = qualified.split(".", 1)
    return "%s.%s" % (quote_ident(schema), quote_ident(name))


def apply_sql(plan, stamp, disable_triggers=False):
    """The whole fix as one transaction; its last statement returns what happened, as JSON."""
    out = ["BEGIN;", SESSION_SQL.replace("SET ", "SET LOCAL "),
           "CREATE TEMP TABLE hb_rows_done (tbl text, kind text, k jsonb) ON COMMIT DROP;"]
    touched = [t for t in plan["tables"] if t["insert"] or t["update"]]
    if disable_triggers:
        out += ["ALTER TABLE %s DISABLE TRIGGER USER;" % _rel_of(t["table"]) for t in touched]
    for t in touched:
        spec = {"schema": t["table"].split(".", 1)[0], "name": t["table"].split(".", 1)[1], "key": t["key"]}
        table, lit = rel(spec), quote_literal(t["table"])
        cols = [c["name"] for c in _writable(t)]
        if t["update"]:
            pre = _rel_of(preserved_name(t["table"], stamp))
            entries = _elements([{"k": u["k"], "h": u["h"]} for u in t["update"]])
            join = "FROM %s x CROSS JOIN LATERAL json_populate_record(NULL::%s, x->'k') k JOIN %s t ON %s" % (
                entries, table, table, _key_join(spec, "t", "k"))
            # Lock the planned rows, save those still as planned, then overwrite exactly those.
            out.append("SELECT count(*) FROM (SELECT 1 %s FOR UPDATE OF t) s;" % join)
            out.append("CREATE TABLE %s AS SELECT t.* %s WHERE md5(t::text) = x->>'h';" % (pre, join))
            sets = [c for c in cols if c not in t["key"]]
            if sets:
                out.append(
                    "WITH u AS (UPDATE %s t SET (%s) = ROW(%s) FROM %s x CROSS JOIN LATERAL json_populate_record("
                    "NULL::%s, x) r WHERE %s AND EXISTS (SELECT 1 FROM %s p WHERE %s) RETURNING %s AS k) "
                    "INSERT INTO hb_rows_done SELECT %s, 'update', k::jsonb FROM u;" % (
                        table, ", ".join(quote_ident(c) for c in sets),
                        ", ".join("r.%s" % quote_ident(c) for c in sets),
                        _elements([u["r"] for u in t["update"]]), table, _key_join(spec, "t", "r"), pre,
                        _key_join(spec, "p", "t"), _key_obj(spec, "t"), lit))
        if t["insert"]:
            overriding = " OVERRIDING SYSTEM VALUE" if any(c["identity"] == "a" for c in t["columns"]) else ""
            out.append(
                "WITH i AS (INSERT INTO %s AS t (%s)%s SELECT %s FROM %s x CROSS JOIN LATERAL json_populate_record("
                "NULL::%s, x) r ON CONFLICT DO NOTHING RETURNING %s AS k) "
                "INSERT INTO hb_rows_done SELECT %s, 'insert', k::jsonb FROM i;" % (
                    table, ", ".join(quote_ident(c) for c in cols), overriding,
                    ", ".join("r.%s" % quote_ident(c) for c in cols), _elements([i["r"] for i in t["insert"]]),
                    table, _key_obj(spec, "t"), lit))
            for col in t["columns"]:
                if col.get("sequence"):
                    out.append("SELECT setval(%s, m) FROM (SELECT max(%s) AS m FROM %s) s WHERE m IS NOT NULL AND "
                               "m > (SELECT last_value FROM %s);" % (
                                   quote_literal(col["sequence"]), quote_ident(col["name"]), table, col["sequence"]))
    if disable_triggers:
        out += ["ALTER TABLE %s ENABLE TRIGGER USER;" % _rel_of(t["table"]) for t in touched]
    out.append("SELECT json_build_object('done', (SELECT coalesce(json_agg(json_build_array(tbl, kind, k)), '[]') "
               "FROM hb_rows_done), 'preserved', json_build_object(%s));" % ", ".join(
                   "%s, (SELECT count(*) FROM %s)" % (quote_literal(preserved_name(t["table"], stamp)),
                                                      _rel_of(preserved_name(t["table"], stamp)))
                   for t in touched if t["update"]))
    out.append("COMMIT;")
    return "\n".join(out) + "\n"


def outcome(plan, result):
    """Applied keys and conflicts per table from the transaction's result."""
    done = {}
    for tbl, kind, key in result.get("done") or []:
        done.setdefault((tbl, kind), set()).add(canon(key))
    tables = []
    for t in plan["tables"]:
        ins = done.get((t["table"], "insert"), set())
        upd = done.get((t["table"], "update"), set())
        tables.append({
            "table": t["table"], "inserted": len(ins), "updated": len(upd),
            "conflicts": {"insert": [i["k"] for i in t["insert"] if canon(i["k"]) not in ins],
                          "update": [u["k"] for u in t["update"] if canon(u["k"]) not in upd]},
        })
    preserved = result.get("preserved") or {}
    return {"tables": tables, "preserved_tables": preserved,
            "conflicts": sum(len(x["conflicts"]["insert"]) + len(x["conflicts"]["update"]) for x in tables)}


def expected_hashes(plan, applied):
    """``{table: {canon key: copy hash}}`` of the keys that were applied (conflicts left out)."""
    out = {}
    skipped = {(x["table"], canon(k)) for x in applied["tables"] for kind in ("insert", "update")
               for k in x["conflicts"][kind]}
    for t in plan["tables"]:
        for entry in t["insert"] + t["update"]:
            if (t["table"], canon(entry["k"])) not in skipped:
                out.setdefault(t["table"], {})[canon(entry["k"])] = entry.get("c")
    return out


def verify(query_live, plan, applied, copy_hashes):
    """After commit: every applied key exists live with the copy's values (``md5(row::text)`` equal).

    ``copy_hashes``: ``{table: {canon key: hash}}`` (from the copy). Returns ``{"ok", "checked", "differ"}``.
    """
    checked, differ = 0, []
    for t in plan["tables"]:
        want = copy_hashes.get(t["table"]) or {}
        if not want:
            continue
        spec = {"schema": t["table"].split(".", 1)[0], "name": t["table"].split(".", 1)[1], "key": t["key"]}
        got = {canon(k): h for k, h in query_live(live_digest_sql(spec, [json.loads(k) for k in want]))}
        for key, digest in want.items():
            checked += 1
            if got.get(key) != digest:
                differ.append({"table": t["table"], "key": json.loads(key),
                               "why": "missing live" if key not in got else "values differ from the copy"})
    return {"ok": not differ, "checked": checked, "differ": differ[:50]}


def counts_sql(tables):
    return "SELECT json_build_object(%s);" % ", ".join(
        "%s, (SELECT count(*) FROM %s)" % (quote_literal(t), _rel_of(t)) for t in tables)


# -- files in the run directory --------------------------------------------------------------------

def csv_text(table):
    """The plan's rows of one table as CSV: action, then the copy's columns."""
    names = [c["name"] for c in table["columns"]]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["hb_action"] + names)
    for kind in ("insert", "update"):
        for entry in table[kind]:
            writer.writerow([kind] + [_cell(entry["r"].get(n)) for n in names])
    return buf.getvalue()


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value
