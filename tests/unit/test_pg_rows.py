"""Rows mode: inputs, keys, dependency order, compare, the one-transaction fix, outcome, verify (fake runner)."""

import json
import os

import pytest
from conftest import FakeRunner

from ansible_collections.healthbutler.recovery.plugins.module_utils import pg_rows as pr
from ansible_collections.healthbutler.recovery.plugins.module_utils import pg_rows_copy as pc
from ansible_collections.healthbutler.recovery.plugins.module_utils import pg_rows_run as run
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import RecoveryError, Result

COLS_USERS = [{"name": "id", "type": "bigint", "generated": False, "identity": "", "sequence": "public.users_id_seq"},
              {"name": "email", "type": "text", "generated": False, "identity": "", "sequence": None}]
COLS_HD = [{"name": "id", "type": "bigint", "generated": False, "identity": "",
            "sequence": "public.health_data_id_seq"},
           {"name": "user_id", "type": "bigint", "generated": False, "identity": "", "sequence": None},
           {"name": "value", "type": "numeric(10,2)", "generated": False, "identity": "", "sequence": None}]
PK = {"index": "x_pkey", "primary": True, "columns": ["id"], "usable": True}


def info(rel, columns, keys, parents=None, exists=True):
    return {"rel": rel, "exists": exists, "qualified": rel.replace('"', "") if exists else None, "columns": columns,
            "keys": keys, "parents": parents or []}


DESCRIBE = [info('"public"."health_data"', COLS_HD, [PK], ["public.users"]), info('"public"."users"', COLS_USERS, [PK])]


def query_from(answers):
    """A query callable answering by the first pattern found in the SQL; records every SQL."""
    seen = []

    def query(sql):
        seen.append(sql)
        for needle, value in answers:
            if needle in sql:
                return value(sql) if callable(value) else value
        raise AssertionError("unexpected SQL: %s" % sql[:200])
    query.seen = seen
    return query


# -- inputs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("tables, where, mode, field, needle", [
    ([], {}, "missing", "tables", "tables is required"),
    (["health data"], {}, "missing", "tables", 'tables: "health data" is not a table name'),
    (["a.b.c"], {}, "missing", "tables", "is not a table name like health_data or public.health_data"),
    (["users", "public.users"], {}, "missing", "tables", "listed twice"),
    (["users"], {"health_data": "user_id = 1"}, "missing", "where", 'where: "health_data" is not one of tables'),
    (["users"], {"users": "id = 1; DROP TABLE users"}, "missing", "where", "one SQL predicate"),
    (["users"], {}, "all", "mode", 'mode "all" is not one of missing, changed, both'),
])
def test_bad_input_is_refused_naming_the_input_as_typed(tables, where, mode, field, needle):
    with pytest.raises(pr.RowsError) as err:
        pr.parse_tables(tables, where, mode)
    assert err.value.field == field and needle in err.value.msg


def test_tables_accept_a_comma_string_schema_names_and_a_where_per_table():
    specs = pr.parse_tables("health_data, app.users", {"health_data": "user_id = 42"}, "both")
    assert [(s["schema"], s["name"], s["where"]) for s in specs] == [
        ("public", "health_data", "user_id = 42"), ("app", "users", None)]
    assert pr.rel(specs[1]) == '"app"."users"'


# -- keys ------------------------------------------------------------------------------------------

def test_a_table_without_a_usable_key_is_refused_with_the_reason():
    partial = {"index": "u_partial", "primary": False, "columns": ["email"], "usable": False}
    answers = [("pg_index", [info('"public"."users"', COLS_USERS, [PK]),
                             info('"public"."log"', COLS_USERS, [partial]),
                             info('"public"."gone"', [], None, exists=False)])]
    with pytest.raises(pr.RowsError) as err:
        pr.describe(query_from(answers), pr.parse_tables(["users", "log", "gone"]))
    assert err.value.field == "tables"
    assert "log has no primary key and no unique index on NOT NULL columns" in err.value.msg
    assert "gone does not exist live" in err.value.msg and "Refused before anything was restored" in err.value.msg
    assert "users" not in err.value.msg.split("tables: ", 1)[1].split(".")[0]


def test_a_unique_index_on_not_null_columns_serves_as_key():
    unique = {"index": "users_email_key", "primary": False, "columns": ["email"], "usable": True}
    answers = [("pg_index", [info('"public"."users"', COLS_USERS, [unique])])]
    spec = pr.describe(query_from(answers), pr.parse_tables(["users"]))[0]
    assert spec["key"] == ["email"] and spec["key_index"] == "users_email_key"


def test_parents_come_before_children_and_a_cycle_keeps_the_given_order():
    specs = [{"qualified": "public.health_data", "parents": ["public.users"]},
             {"qualified": "public.users", "parents": []},
             {"qualified": "public.other", "parents": ["public.not_chosen"]}]
    assert [s["qualified"] for s in pr.dependency_order(specs)] == ["public.users", "public.health_data",
                                                                    "public.other"]
    cycle = [{"qualified": "a.x", "parents": ["a.y"]}, {"qualified": "a.y", "parents": ["a.x"]}]
    assert [s["qualified"] for s in pr.dependency_order(cycle)] == ["a.x", "a.y"]


# -- compare ---------------------------------------------------------------------------------------

COPY = [[{"id": 1}, "h1"], [{"id": 2}, "h2"], [{"id": 3}, "h3"]]
LIVE = [[{"id": 1}, "h1"], [{"id": 3}, "LIVE3"]]


@pytest.mark.parametrize("mode, inserts, updates", [
    ("missing", [[{"id": 2}, "h2"]], []), ("changed", [], [[{"id": 3}, "LIVE3", "h3"]]),
    ("both", [[{"id": 2}, "h2"]], [[{"id": 3}, "LIVE3", "h3"]])])
def test_diff_by_key_per_mode(mode, inserts, updates):
    out = pr.diff(COPY, LIVE, mode)
    assert out["insert"] == inserts and out["update"] == updates and out["same"] == 1


def scripted_plan(mode="both", copy_columns=None):
    specs = pr.describe(query_from([("pg_index", DESCRIBE)]), pr.parse_tables(["health_data", "users"],
                                                                              {"health_data": "user_id > 0"}, mode))
    query_copy = query_from([
        ('FROM "public"."health_data" t WHERE (user_id > 0)', COPY),
        ('FROM "public"."users" t;', [[{"id": 7}, "u7"]]),
        ("row_to_json(t)", lambda sql: [[{"id": k}, {"id": k, "user_id": 7, "value": 1.5}]
                                        for k in (2, 3) if '"id":%d' % k in sql] or [[{"id": 7}, {"id": 7,
                                                                                                  "email": "a@b"}]]),
    ])
    query_live = query_from([('JOIN "public"."health_data" t', LIVE), ('JOIN "public"."users" t', [])])
    return pr.build_plan(query_copy, query_live, specs, mode, copy_columns), query_copy, query_live


def test_plan_compares_parents_first_applies_where_on_the_copy_and_keeps_the_rows():
    plan, query_copy, _live = scripted_plan()
    assert [t["table"] for t in plan["tables"]] == ["public.users", "public.health_data"]
    assert plan["totals"] == {"insert": 2, "update": 1}
    hd = plan["tables"][1]
    assert hd["where"] == "user_id > 0" and hd["sample_insert"] == [{"id": 2}] and hd["sample_update"] == [{"id": 3}]
    assert hd["update"][0]["h"] == "LIVE3" and hd["update"][0]["r"]["id"] == 3
    assert all(sql.startswith(pr.SESSION_SQL) for sql in query_copy.seen)  # same text form on both sides
    lines = pr.plan_lines(plan, "20261202T010000Z")
    assert "public.users -> public.health_data" in lines[0]
    assert "insert 1 (e.g. 2); update 1 (e.g. 3)" in lines[2]
    assert "public.health_data_pre_rows_20261202t010000z" in lines[2]
    summary = pr.summary(plan)
    assert summary["tables"][1]["insert"] == 1 and "r" not in json.dumps(summary["tables"][1]["sample_insert"])


def test_a_schema_change_since_the_target_is_refused():
    with pytest.raises(pr.RowsError) as err:
        scripted_plan(copy_columns={"public.users": COLS_USERS, "public.health_data": COLS_HD[:2]})
    assert "other columns in the copy than live" in err.value.msg and err.value.field == "tables"


# -- the fix -----------------------------------------------------------------------------------------

def test_the_fix_is_one_transaction_preserving_then_overwriting_and_skipping_conflicts():
    plan, _c, _l = scripted_plan()
    sql = pr.apply_sql(plan, "20261202T010000Z")
    assert sql.count("BEGIN;") == 1 and sql.rstrip().endswith("COMMIT;")
    assert "SET LOCAL TimeZone = 'UTC'" in sql
    users_at, hd_at = sql.index('INSERT INTO "public"."users"'), sql.index('INSERT INTO "public"."health_data"')
    assert users_at < hd_at  # parents first
    lock = sql.index("FOR UPDATE OF t")
    pre = sql.index('CREATE TABLE "public"."health_data_pre_rows_20261202t010000z" AS SELECT t.*')
    update = sql.index('UPDATE "public"."health_data" t SET ("user_id", "value") = ROW(r."user_id", r."value")')
    assert lock < pre < update  # locked, saved, then overwritten
    assert "WHERE md5(t::text) = x->>'h'" in sql  # a row changed again live is not saved, so not overwritten
    assert sql.count("ON CONFLICT DO NOTHING") == 2  # a key back live is skipped
    assert "setval('public.health_data_id_seq', m)" in sql and "m > (SELECT last_value FROM" in sql
    assert "DISABLE TRIGGER" not in sql
    with_triggers = pr.apply_sql(plan, "20261202T010000Z", disable_triggers=True)
    assert with_triggers.count("DISABLE TRIGGER USER") == 2 and with_triggers.count("ENABLE TRIGGER USER") == 2
    assert with_triggers.index("ENABLE TRIGGER") > with_triggers.index("ON CONFLICT")


def test_outcome_reports_conflicts_and_verify_compares_with_the_copy():
    plan, _c, _l = scripted_plan()
    result = {"done": [["public.users", "insert", {"id": 7}], ["public.health_data", "update", {"id": 3}]],
              "preserved": {"public.health_data_pre_rows_x": 1}}
    applied = pr.outcome(plan, result)
    hd = applied["tables"][1]
    assert hd["inserted"] == 0 and hd["updated"] == 1 and hd["conflicts"]["insert"] == [{"id": 2}]
    assert applied["conflicts"] == 1 and applied["preserved_tables"] == {"public.health_data_pre_rows_x": 1}
    want = pr.expected_hashes(plan, applied)
    assert want == {"public.users": {'{"id":7}': "u7"}, "public.health_data": {'{"id":3}': "h3"}}
    good = pr.verify(query_from([('"public"."users"', [[{"id": 7}, "u7"]]),
                                 ('"public"."health_data"', [[{"id": 3}, "h3"]])]), plan, applied, want)
    assert good == {"ok": True, "checked": 2, "differ": []}
    bad = pr.verify(query_from([('"public"."users"', []), ('"public"."health_data"', [[{"id": 3}, "other"]])]),
                    plan, applied, want)
    assert not bad["ok"] and [d["why"] for d in bad["differ"]] == ["missing live", "values differ from the copy"]


def test_csv_has_the_action_and_the_copy_columns():
    plan, _c, _l = scripted_plan()
    text = pr.csv_text(plan["tables"][1])
    assert text.splitlines() == ["hb_action,id,user_id,value", "insert,2,7,1.5", "update,3,7,1.5"]


# -- over a fake runner: the module's steps ---------------------------------------------------------------

PARAMS = {"tables": ["health_data", "users"], "where": {}, "mode": "both", "db_name": "hb", "pg_bindir": "/pg/bin",
          "pg_os_user": "postgres", "pg_port": 5432, "pg_socket_dir": "/run/pg", "run_stamp": "20261202T010000Z",
          "disable_triggers": False, "export_format": "csv"}


def answer_describe(argv, data):
    return json.dumps(DESCRIBE)


def test_check_step_reads_live_only_and_returns_the_keys(tmp_path):
    runner = FakeRunner([("pg_index", 0, answer_describe, "")])
    out = run.check(runner, dict(PARAMS, run_dir=str(tmp_path)))
    assert out["changed"] is False and [t["key"] for t in out["tables"]] == [["id"], ["id"]]
    assert all("-p 5432" in line for line in runner.argv_lines())
    assert all("PGPASSWORD" not in " ".join(c["argv"]) for c in runner.calls)


def test_apply_step_runs_the_planned_transaction_and_fails_when_verification_differs(tmp_path):
    plan, _c, _l = scripted_plan()
    (tmp_path / run.PLAN_FILE).write_text(json.dumps(dict(plan, stamp="20261202T010000Z")))
    result = {"done": [["public.users", "insert", {"id": 7}], ["public.health_data", "insert", {"id": 2}],
                       ["public.health_data", "update", {"id": 3}]], "preserved": {"p": 1}}
    runner = FakeRunner([
        ("BEGIN;", 0, json.dumps(result), ""),
        ("SELECT json_build_object\\(", 0, json.dumps({"public.users": 10, "public.health_data": 20}), ""),
        ('JOIN "public"."users" t', 0, json.dumps([[{"id": 7}, "u7"]]), ""),
        ('JOIN "public"."health_data" t', 0, json.dumps([[{"id": 2}, "h2"], [{"id": 3}, "WRONG"]]), ""),
    ])
    with pytest.raises(RecoveryError) as err:
        run.apply(runner, dict(PARAMS, run_dir=str(tmp_path)))
    assert "1 key(s) do not hold the copy's values" in err.value.msg
    assert err.value.details["applied"]["conflicts"] == 0
    assert oct(os.stat(tmp_path / "rows-applied.json").st_mode & 0o777) == "0o600"
    assert sum("BEGIN;" in (c["data"] or "") for c in runner.calls) == 1


# -- the copy ----------------------------------------------------------------------------------------

def test_the_copy_has_its_own_port_and_socket_archiving_off_and_the_target():
    items = dict(pc.settings(58832, "/d/copy", {"kind": "name", "value": "rp1", "inclusive": True,
                                                "action": "pause"}, "/wal", 1))
    assert items["port"] == "58832" and items["unix_socket_directories"] == "/d/copy"
    assert items["listen_addresses"] == "" and items["archive_mode"] == "off" and items["hot_standby"] == "off"
    assert items["recovery_target_name"] == "rp1" and items["recovery_target_action"] == "promote"
    assert "cp \"/wal/%f\"" in items["restore_command"]
    text = pc.render(pc.settings(1, "/d", {"kind": "immediate", "value": True, "inclusive": True}, "/w", "current"))
    assert "archive_mode = 'off'" in text and "listen_addresses = ''" in text
    assert pc.copy_dir("/var/lib/pg/main/", "20261202T010000Z") == "/var/lib/pg/main.rows_copy_20261202T010000Z"


class Replies(FakeRunner):
    """Answers psql with successive (rc, stdout, stderr)."""

    def __init__(self, replies):
        super().__init__()
        self.replies = list(replies)

    def _run(self, argv, env, data, cwd, timeout):
        self.calls.append({"argv": argv, "env": env, "data": data, "cwd": cwd})
        return Result(*self.replies.pop(0))


def test_waiting_for_the_promoted_copy_retries_until_it_accepts_connections(tmp_path):
    runner = Replies([(2, "", "FATAL:  the database system is not accepting connections"), (0, "false", ""),
                      (0, "true", "")])
    copy = pc.RowsCopy(runner, "/pg/bin", "postgres", str(tmp_path / "c"), 58832, startup_timeout=5)
    copy.server.postmaster_alive = lambda: True
    slept = []
    assert copy.wait_promoted(sleep=slept.append, clock=lambda: 0.0)
    assert len(slept) == 2 and not runner.replies
    assert all("pg_is_in_recovery" in c["data"] for c in runner.calls)


def test_a_copy_whose_server_died_fails_with_its_log(tmp_path):
    runner = Replies([(2, "", "connection refused")])
    copy = pc.RowsCopy(runner, "/pg/bin", "postgres", str(tmp_path / "c"), 58832, startup_timeout=5)
    os.makedirs(copy.root)
    with open(copy.log, "w", encoding="utf-8") as fh:
        fh.write("FATAL:  recovery ended before configured recovery target was reached\n")
    copy.server.postmaster_alive = lambda: False
    with pytest.raises(RecoveryError) as err:
        copy.wait_promoted(sleep=lambda s: None, clock=lambda: 0.0)
    assert "recovery ended before configured recovery target was reached" in err.value.msg


# -- cleanup_preserved finds what rows mode kept ---------------------------------------------------------

def test_kept_copies_and_pre_rows_tables_are_found_by_exact_name(tmp_path):
    from ansible_collections.healthbutler.recovery.plugins.module_utils import preserved
    for name in ("pgdata", "pgdata.rows_copy_20261202T010000Z", "pgdata.rows_copy_x",
                 "other.rows_copy_20261202T010000Z"):
        os.makedirs(tmp_path / name)
    found = preserved.rows_copies(str(tmp_path / "pgdata"))
    assert [(c["kind"], os.path.basename(c["name"]), c["stamp"]) for c in found] == [
        ("rows_copy", "pgdata.rows_copy_20261202T010000Z", "20261202T010000Z")]
    tables = preserved.pre_rows_tables(["public.health_data_pre_rows_20261202t010000z", "public.health_data",
                                        "public.x_pre_rows_today"])
    assert tables == [{"kind": "pre_rows_table", "name": "public.health_data_pre_rows_20261202t010000z",
                       "stamp": "20261202T010000Z"}]
    assert preserved.older_than(tables, preserved.parse_stamp("20261210T010000Z"), 7)[0]["remove"]
    assert pr.preserved_name("public.health_data", "20261202T010000Z") == tables[0]["name"]


def test_the_drills_recovered_probe_reads_the_deleted_ids_from_the_injection_facts():
    from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_catalog, drill_effect
    for name in ("data_loss", "data_loss_cluster"):
        probe = drill_catalog.select([name])[0]["recovered"]
        sql = drill_effect.fill(probe, {"deleted_ids": "11,12"})["sql"]
        assert "string_to_array('11,12', ',')" in sql and "hb_drill_preserved_rows" not in sql
    assert drill_catalog.SCENARIOS["data_loss"]["recovery"]["vars"]["recover_mode"] == "rows"
    assert "rpo_cutoff" not in drill_catalog.SCENARIOS["data_loss"]
    assert drill_catalog.SCENARIOS["data_loss_cluster"]["recovery"]["vars"]["recover_mode"] == "pitr"
