"""recover_db.yml rows mode on the real sandbox: rows put back from a point-in-time copy while the app serves.

One module-scoped scene: a base backup, the writer POSTing through the app, a target time, then in one
transaction 500 health_data rows and 3 users deleted and 20 rows updated wrongly, WAL archived. Tests run in
file order: the keyless refusal and --check before the one real run.
"""

from __future__ import annotations

import glob
import json
import os
import threading
import time

import pytest
import recoverdb_helpers as h
from harness import run_playbook, wait_for

WRITER_METRIC = "rows-writer"
USERS_SQL = "SELECT id FROM users WHERE id > 900 ORDER BY id LIMIT 3"


class Traffic(threading.Thread):
    """The writer (POST /api/health-data every 50 ms) and a /health probe, both logging every answer."""

    def __init__(self, box):
        super().__init__(daemon=True)
        self.box, self.halt = box, threading.Event()
        self.writes, self.health = [], []

    def run(self):
        while not self.halt.is_set():
            status, body = self.box.http("/api/health-data", "POST",
                                         {"user_id": 1, "metric": WRITER_METRIC, "value": 1})
            self.writes.append((time.time(), status, body.get("id") if isinstance(body, dict) else None))
            self.health.append(self.box.http("/health")[0])
            time.sleep(0.05)

    def stop(self):
        self.halt.set()
        self.join(10)


def rows_of(box, where):
    """``{id: md5(row::text)}`` of health_data rows matching ``where`` (UTC, ISO: as the collection compares)."""
    out = box.psql("SET TimeZone = 'UTC'; SELECT coalesce(json_object_agg(id, md5(t::text)), '{}') FROM health_data t "
                   "WHERE %s" % where)
    return json.loads(out.splitlines()[-1])


def users_of(box, ids):
    out = box.psql("SET TimeZone = 'UTC'; SELECT coalesce(json_object_agg(id, md5(u::text)), '{}') FROM users u "
                   "WHERE id IN (%s)" % ",".join(map(str, ids)))
    return json.loads(out.splitlines()[-1])


def copies(box):
    return glob.glob(box["hb_pg_data_dir"] + ".rows_copy_*")


def pre_rows_tables(box):
    out = box.psql("SELECT coalesce(string_agg(relname, ',' ORDER BY relname), '') FROM pg_class "
                   "WHERE relname LIKE '%\\_pre\\_rows\\_%' AND relkind = 'r'")
    return set(out.split(",")) - {""}


def rows(target, check=False, **extra):
    return run_playbook("recover_db.yml", dict({"recover_mode": "rows", "target": target}, **extra), check=check)


@pytest.fixture(scope="module")
def scene(sandbox):
    box = sandbox
    box.ensure_healthy()
    box.psql("DROP TABLE IF EXISTS rows_nokey; CREATE TABLE rows_nokey (a int, b text); "
             "INSERT INTO rows_nokey VALUES (1, 'x');")
    h.make_base_backup(box)
    traffic = Traffic(box)
    traffic.start()
    time.sleep(1.5)
    target = h.iso_now()
    time.sleep(1.1)
    users = [int(x) for x in box.psql(USERS_SQL).split()]
    user_rows = "user_id IN (%s)" % ",".join(map(str, users))
    others = ("id IN (SELECT id FROM health_data WHERE metric <> '%s' AND NOT %s ORDER BY id LIMIT 500 - "
              "(SELECT count(*) FROM health_data WHERE %s))" % (WRITER_METRIC, user_rows, user_rows))
    deleted_where = "(%s OR %s)" % (user_rows, others)
    damaged_where = ("id IN (SELECT id FROM health_data WHERE metric <> '%s' AND NOT %s AND value >= 0 "
                     "ORDER BY id DESC LIMIT 20)" % (WRITER_METRIC, user_rows))
    deleted = rows_of(box, deleted_where)
    damaged = rows_of(box, damaged_where)
    good_users = users_of(box, users)
    assert len(deleted) == 500 and len(damaged) == 20 and len(good_users) == 3 and not set(deleted) & set(damaged)
    out = box.psql("BEGIN; UPDATE health_data SET value = -1 WHERE id IN (%s); DELETE FROM health_data WHERE id IN "
                   "(%s); DELETE FROM users WHERE id IN (%s); COMMIT; SELECT pg_current_wal_lsn()::text;" % (
                       ",".join(damaged), ",".join(deleted), ",".join(map(str, users))))
    lsn = out.split()[-1]
    damage_ts = time.time()
    time.sleep(1.5)  # the writer keeps writing after the damage: those rows must survive
    tli = int(box.scalar("SELECT timeline_id FROM pg_control_checkpoint()"))
    box.psql("SELECT pg_switch_wal()")
    seg = h.segment_of(lsn, tli)
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(box["hb_wal_archive_dir"], seg)):
        assert time.monotonic() < deadline, "segment %s not archived" % seg
        time.sleep(0.2)
    yield {"target": {"time": target}, "deleted": deleted, "damaged": damaged, "users": users,
           "good_users": good_users, "traffic": traffic, "damage_ts": damage_ts}
    traffic.stop()
    box.psql("DROP TABLE IF EXISTS rows_nokey")


def test_a_keyless_table_is_refused_before_anything_is_restored(scene, sandbox):
    run = rows(scene["target"], tables=["health_data", "rows_nokey"])
    assert run.rc != 0
    assert "rows_nokey has no primary key and no unique index" in run.stdout, run.stdout[-3000:]
    assert "Refused before anything was restored" in run.stdout
    assert not run.task_results("Restore the copy to the target beside live (the app keeps serving)")
    assert copies(sandbox) == []


def test_check_mode_prints_the_plan_changes_nothing_and_leaves_no_copy(scene, sandbox):
    pre_before = pre_rows_tables(sandbox)
    run = rows(scene["target"], check=True, tables=["health_data", "users"], mode="both")
    assert run.rc == 0, run.stdout[-5000:]
    plan = "\n".join(run.task_results("Print the plan")[0]["msg"])
    assert "public.users (key id): " in plan and "insert 3 " in plan, plan
    assert "insert 500 " in plan and "update 20 " in plan, plan
    assert "public.users -> public.health_data" in plan  # parents first
    assert rows_of(sandbox, "id IN (%s)" % ",".join(scene["deleted"])) == {}
    assert users_of(sandbox, scene["users"]) == {}
    assert set(json.loads(sandbox.psql("SELECT json_agg(DISTINCT value) FROM health_data WHERE id IN (%s)"
                                       % ",".join(scene["damaged"])))) == {-1}
    assert pre_rows_tables(sandbox) == pre_before
    assert copies(sandbox) == []


def test_both_brings_back_exactly_the_lost_rows_and_values_while_the_app_serves(scene, sandbox):
    traffic = scene["traffic"]
    writes_before = len(traffic.writes)
    pre_before = pre_rows_tables(sandbox)
    run = rows(scene["target"], tables=["health_data", "users"], mode="both")
    time.sleep(0.5)
    traffic.stop()
    assert run.rc == 0, run.stdout[-6000:]
    # exactly those rows and values are back
    assert rows_of(sandbox, "id IN (%s)" % ",".join(scene["deleted"])) == scene["deleted"]
    assert rows_of(sandbox, "id IN (%s)" % ",".join(scene["damaged"])) == scene["damaged"]
    assert users_of(sandbox, scene["users"]) == scene["good_users"]
    # every row the writer inserted (before and after the damage) is still there
    acked = [int(i) for _t, status, i in traffic.writes if status == 201]
    assert acked and len(traffic.writes) > writes_before
    after_damage = [i for t, status, i in traffic.writes if status == 201 and t > scene["damage_ts"]]
    assert after_damage
    present = set(json.loads(sandbox.psql("SELECT json_agg(id) FROM health_data WHERE metric = '%s'" % WRITER_METRIC)))
    assert set(acked) <= present
    # the app served throughout: no failed write, /health 200 every time
    assert [w for w in traffic.writes if w[1] != 201] == []
    assert set(traffic.health) == {200}
    # the wrongly updated values are kept in <table>_pre_rows_<UTC>
    names = sorted(pre_rows_tables(sandbox) - pre_before)
    assert len(names) == 1 and names[0].startswith("health_data_pre_rows_"), names
    kept = json.loads(sandbox.psql("SELECT json_agg(json_build_array(id, value)) FROM %s" % names[0]))
    assert sorted(str(i) for i, _v in kept) == sorted(scene["damaged"]) and {v for _i, v in kept} == {-1}
    assert copies(sandbox) == []
    record = h.read_json(os.path.join(latest_run_dir(sandbox), "recovery.json"))
    assert record["mode"] == "rows" and record["verification"]["ok"] and record["verification"]["checked"] == 523
    assert record["rows_after"]["public.users"] == record["rows_before"]["public.users"] + 3
    assert record["applied"]["conflicts"] == 0
    for name in ("rows-plan.sql", "rows-public_health_data.csv", "rows-public_users.csv"):
        assert os.path.exists(os.path.join(latest_run_dir(sandbox), name))


def latest_run_dir(box):
    root = box["hb_run_root"]
    return os.path.join(root, sorted(d for d in os.listdir(root) if d.endswith("-recover-db"))[-1])


def server_gone(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            return b"postgres" not in fh.read()
    except OSError:
        return True


def test_keep_copy_leaves_a_read_only_copy_that_cleanup_preserved_removes(scene, sandbox):
    run = rows(scene["target"], tables=["users"], keep_copy=True)
    assert run.rc == 0, run.stdout[-5000:]
    kept = copies(sandbox)
    assert len(kept) == 1, kept
    port = str(sandbox["hb_pg_port"] + 3000)
    reader = ["-h", kept[0], "-p", port, "-U", "hb_rows_reader", "-d", sandbox["hb_db_name"], "-X", "-A", "-t"]
    psql = os.path.join(sandbox["hb_pg_bindir"], "psql")
    got = h.as_postgres(sandbox.site, [psql, *reader, "-c", "SELECT count(*) FROM users WHERE id IN (%s)"
                                       % ",".join(map(str, scene["users"]))])
    assert got.stdout.strip() == "3"  # the copy holds the users as they were at the target
    write = h.as_postgres(sandbox.site, [psql, *reader, "-c", "DELETE FROM users"], check=False)
    assert write.returncode != 0 and "read-only" in write.stderr
    assert "hb_rows_reader" in run.stdout and kept[0] in run.stdout  # how to connect was printed
    listed = run_playbook("cleanup_preserved.yml", {"older_than_days": 0}, check=True)
    assert listed.rc == 0 and kept[0] in listed.stdout and "_pre_rows_" in listed.stdout, listed.stdout[-3000:]
    assert copies(sandbox) == kept
    with open(os.path.join(kept[0], "data", "postmaster.pid"), encoding="utf-8") as fh:
        copy_pid = int(fh.readline())
    gone = run_playbook("cleanup_preserved.yml", {"older_than_days": 0})
    assert gone.rc == 0, gone.stdout[-3000:]
    assert copies(sandbox) == [] and pre_rows_tables(sandbox) == set()
    # its server was stopped, not orphaned (its exit may trail pg_ctl's return by a moment)
    wait_for(lambda: server_gone(copy_pid), timeout=30, what="the kept copy's server gone")
    assert sandbox.http("/health")[0] == 200
