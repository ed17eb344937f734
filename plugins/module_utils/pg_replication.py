# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Streaming replication: what one server says of it, and the judgements failover and rejoin make.

``state`` is one host's view in one call: ``pg_controldata`` (readable whether the server runs or not),
one psql round trip when it runs (``STATE_SQL``: recovery, timeline, LSNs, wal receiver,
``pg_stat_replication``, slots) and, when it does not, the end of its WAL read with ``pg_waldump``.
The rest are plain functions: readiness of a standby for promotion, the RPO of a promotion, slot names,
the app's ``DATABASE_URL`` pointed at another server.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

from ansible_collections.healthbutler.recovery.plugins.module_utils import psql
from ansible_collections.healthbutler.recovery.plugins.module_utils.pitr_exec import parse_controldata
from ansible_collections.healthbutler.recovery.plugins.module_utils.redact import redact_text
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError
from ansible_collections.healthbutler.recovery.plugins.module_utils.walnames import format_lsn, parse_lsn

# One JSON document: works on a primary and on a standby (CASE keeps primary-only calls off a standby).
STATE_SQL = """
SELECT json_build_object(
  'in_recovery', pg_is_in_recovery(),
  'timeline', (SELECT timeline_id FROM pg_control_checkpoint()),
  'current_lsn', CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn()::text END,
  'wal_timeline', CASE WHEN NOT pg_is_in_recovery()
      THEN ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
  'receive_lsn', pg_last_wal_receive_lsn()::text,
  'replay_lsn', pg_last_wal_replay_lsn()::text,
  'replay_timestamp', pg_last_xact_replay_timestamp(),
  'replay_delay_s', CASE WHEN pg_is_in_recovery()
      THEN round(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::numeric, 3) END,
  'replay_pending_bytes', CASE WHEN pg_is_in_recovery()
      THEN pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) END,
  'receiver', (SELECT row_to_json(r) FROM (SELECT status, received_tli AS timeline, flushed_lsn::text AS flushed_lsn,
      latest_end_lsn::text AS latest_end_lsn, last_msg_receipt_time, sender_host, sender_port, slot_name
      FROM pg_stat_wal_receiver) r),
  'replicas', (SELECT coalesce(json_agg(r ORDER BY r.application_name), '[]') FROM (
      SELECT application_name, client_addr::text AS client_addr, state, sync_state, sent_lsn::text AS sent_lsn,
             replay_lsn::text AS replay_lsn,
             CASE WHEN NOT pg_is_in_recovery() THEN pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) END AS lag_bytes,
             round(extract(epoch FROM replay_lag)::numeric, 3) AS lag_s,
             round(extract(epoch FROM write_lag)::numeric, 3) AS write_lag_s
        FROM pg_stat_replication) r),
  'slots', (SELECT coalesce(json_agg(s ORDER BY s.slot_name), '[]') FROM (
      SELECT slot_name, active, restart_lsn::text AS restart_lsn,
             CASE WHEN NOT pg_is_in_recovery() THEN pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) END
               AS retained_bytes
        FROM pg_replication_slots WHERE slot_type = 'physical') s)
)::jsonb
"""

WALDUMP_END_RE = re.compile(r"error in WAL record at ([0-9A-F]+/[0-9A-F]+)(?::.*? at ([0-9A-F]+/[0-9A-F]+))?")
WALDUMP_RECORD_RE = re.compile(r"len \(rec/tot\):\s*\d+/\s*(\d+), .*?lsn: ([0-9A-F]+/[0-9A-F]+)")


def lsn_diff(a, b):
    """``a - b`` in bytes; None when either is unknown."""
    if not a or not b:
        return None
    return parse_lsn(a) - parse_lsn(b)


def slot_name(host):
    """The physical slot a member streams through: ``hb_`` and its inventory name, lower case, [a-z0-9_]."""
    return "hb_" + re.sub(r"[^a-z0-9_]", "_", str(host).lower())[:59]


def wal_end(stdout, stderr):
    """End of valid WAL from ``pg_waldump -s <redo>``: the LSN where reading stopped, else the last record's end.

    pg_waldump ends with ``error in WAL record at A: invalid record length at B: ...``; B (or A) is where the
    next record would have started. Returns the LSN text or None.
    """
    matches = list(WALDUMP_END_RE.finditer(stderr or ""))
    match = matches[-1] if matches else None
    if match:
        return format_lsn(parse_lsn(match.group(2) or match.group(1)))
    last = None
    for line in (stdout or "").splitlines():
        rec = WALDUMP_RECORD_RE.search(line)
        if rec:
            last = rec
    if last:
        return format_lsn(parse_lsn(last.group(2)) + int(last.group(1)))
    return None


def controldata_summary(fields):
    """The pg_controldata lines failover needs: cluster state, timeline, checkpoint LSNs."""
    def get(key):
        return fields.get(key) or None
    tli = get("Latest checkpoint's TimeLineID")
    return {"cluster_state": get("Database cluster state"), "timeline": int(tli) if tli else None,
            "checkpoint_lsn": get("Latest checkpoint location"), "redo_lsn": get("Latest checkpoint's REDO location"),
            "data_checksums": (get("Data page checksum version") or "0") != "0",
            "wal_log_hints": get("wal_log_hints setting") == "on",
            "min_recovery_end_lsn": get("Minimum recovery ending location")}


def history_timeline(wal_dir):
    """The highest timeline in ``wal_dir`` with a history file and WAL of its own (1 when there is none).

    A history file alone is not a timeline the server is on: a standby copies the history files it finds in the
    WAL archive, including one it cannot follow (a PITR of the primary that was rolled back). A server that
    switched (promoted, or followed) has written or received a segment named with the new timeline.
    """
    try:
        names = os.listdir(wal_dir)
    except OSError:
        return 1
    histories = {int(n[:8], 16) for n in names if re.match(r"^[0-9A-F]{8}\.history$", n)}
    segments = {int(n[:8], 16) for n in names if re.match(r"^[0-9A-F]{24}(\.partial)?$", n)}
    return max(histories & segments, default=1)


def current_timeline(role, sql, control, history_tli):
    """The timeline a server is on: a primary's WAL file, else the newest of what a standby or a stopped server shows.

    ``pg_control_checkpoint()`` and pg_controldata lag behind a promotion or a followed timeline switch until the
    next checkpoint or restartpoint; a history file and the wal receiver do not.
    """
    sql = sql or {}
    if role == "primary" and sql.get("wal_timeline"):
        return int(sql["wal_timeline"])
    receiver_tli = (sql.get("receiver") or {}).get("timeline")
    if role == "standby" and receiver_tli:
        # The WAL it receives is the timeline it is on. A newer history file can be one it found in the archive
        # and could not follow (a PITR of the primary that was rolled back), not a switch it made.
        return int(receiver_tli)
    seen = [receiver_tli, sql.get("timeline"), (control or {}).get("timeline"), history_tli]
    seen = [int(t) for t in seen if t]
    return max(seen) if seen else None


def role_of(running, sql):
    """primary, standby or down."""
    if not running or sql is None:
        return "down"
    return "standby" if sql.get("in_recovery") else "primary"


def state(runner, conn, data_dir, pg_bindir, read_wal_end=True):
    """One server's replication view (see the module docstring). Never raises for a server that is down."""
    out = {"data_dir": data_dir, "errors": []}
    res = runner.run([os.path.join(pg_bindir, "pg_controldata"), "-D", data_dir], env={"LANG": "C", "LC_ALL": "C"})
    if res.rc == 0:
        out["control"] = controldata_summary(parse_controldata(res.stdout))
    else:
        out["control"] = None
        out["errors"].append("pg_controldata: %s" % redact_text(res.stderr.strip())[-300:])
    status = runner.run([os.path.join(pg_bindir, "pg_ctl"), "-D", data_dir, "status"])
    out["running"] = status.rc == 0
    out["sql"] = None
    if out["running"]:
        try:
            out["sql"] = psql.query_json(runner, conn, STATE_SQL, timeout=30)
        except CommandError as exc:
            out["errors"].append("query: %s" % redact_text((exc.stderr or exc.msg).strip())[-300:])
    out["role"] = role_of(out["running"], out["sql"])
    out["timeline"] = current_timeline(out["role"], out["sql"], out["control"],
                                       history_timeline(os.path.join(data_dir, "pg_wal")))
    out["wal_end_lsn"] = None
    if out["role"] == "primary":
        out["wal_end_lsn"] = out["sql"].get("current_lsn")
    elif out["role"] == "standby":
        out["wal_end_lsn"] = out["sql"].get("receive_lsn") or out["sql"].get("replay_lsn")
    elif read_wal_end and out["control"] and out["control"].get("redo_lsn"):
        dump = runner.run([os.path.join(pg_bindir, "pg_waldump"), "-p", os.path.join(data_dir, "pg_wal"),
                           "-t", str(out["timeline"] or 1), "-s", out["control"]["redo_lsn"]],
                          timeout=120)
        out["wal_end_lsn"] = wal_end(dump.stdout, dump.stderr)
        if not out["wal_end_lsn"]:
            out["errors"].append("pg_waldump: %s" % redact_text(dump.stderr.strip())[-300:])
    out["summary"] = summarize(out)
    return out


def summarize(st):
    """One line an operator reads: role, timeline, and lag where there is one."""
    role = st.get("role")
    sql = st.get("sql") or {}
    if role == "primary":
        parts = []
        for r in sql.get("replicas") or []:
            seconds = "" if r.get("lag_s") is None else ", %s s" % r["lag_s"]
            parts.append("%s (%s, lag %s bytes%s)" % (r.get("application_name"), r.get("state"), r.get("lag_bytes"),
                                                      seconds))
        replicas = ", ".join(parts) or "none"
        return "primary on timeline %s at %s; replicas: %s" % (st.get("timeline"), sql.get("current_lsn"), replicas)
    if role == "standby":
        receiver = sql.get("receiver") or {}
        delay = sql.get("replay_delay_s")
        return "standby on timeline %s, receiver %s, replayed %s%s" % (
            st.get("timeline"), receiver.get("status") or "not running", sql.get("replay_lsn"),
            "" if delay is None else ", %s s since the last replayed transaction" % delay)
    cluster_state = (st.get("control") or {}).get("cluster_state")
    return "down (cluster state %s, WAL ends at %s)" % (cluster_state, st.get("wal_end_lsn"))


def failover_check(standby, primary, max_lag_bytes, primary_reachable=True):
    """Problems that forbid promoting ``standby``; and the lag in bytes that was measured.

    ``standby`` and ``primary`` are ``state`` results (``primary`` None when its host cannot be reached).
    A running primary must see the standby streaming; a primary that is down is measured by the end of its
    WAL against what the standby received. Returns ``{"ok", "problems", "lag_bytes", "lag_from"}``.
    """
    problems = []
    if standby.get("role") != "standby":
        problems.append("the standby is %s, not a running standby in recovery" % standby.get("role"))
    sql = standby.get("sql") or {}
    received = sql.get("receive_lsn") or sql.get("replay_lsn")
    lag, lag_from = None, None
    if primary and primary_reachable:
        if primary.get("role") == "standby":
            problems.append("the primary is itself a standby: nothing to fail over from")
        if primary.get("timeline") and standby.get("timeline") and primary["timeline"] != standby["timeline"]:
            problems.append("timelines differ: primary %s, standby %s" % (primary["timeline"], standby["timeline"]))
        if primary.get("role") == "primary":
            receiver = sql.get("receiver") or {}
            if receiver.get("status") != "streaming":
                problems.append("the primary runs but the standby is not streaming from it (receiver: %s)"
                                % (receiver.get("status") or "none"))
        if primary.get("wal_end_lsn") and received:
            lag, lag_from = max(0, lsn_diff(primary["wal_end_lsn"], received)), (
                "primary's %s WAL end" % ("current" if primary.get("role") == "primary" else "last"))
    if lag is not None and max_lag_bytes is not None and lag > int(max_lag_bytes):
        problems.append("the standby is %d bytes behind the %s (bound %d)" % (lag, lag_from, int(max_lag_bytes)))
    return {"ok": not problems, "problems": problems, "lag_bytes": lag, "lag_from": lag_from}


def rpo(old_primary_end_lsn, promoted_lsn):
    """What a promotion lost: bytes of the old primary's WAL past the promoted point (None when unreadable)."""
    if not old_primary_end_lsn or not promoted_lsn:
        return {"bytes": None, "old_primary_end_lsn": old_primary_end_lsn, "promoted_lsn": promoted_lsn,
                "measured": False}
    return {"bytes": max(0, lsn_diff(old_primary_end_lsn, promoted_lsn)), "old_primary_end_lsn": old_primary_end_lsn,
            "promoted_lsn": promoted_lsn, "measured": True}


def point_url(url, host, port):
    """``url`` with its host and port replaced (user, password, database and query kept)."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres") or not parts.hostname:
        raise ValueError("DATABASE_URL is not a postgresql://user:password@host:port/db URL")
    userinfo = parts.netloc.rpartition("@")[0]
    hostport = "%s:%d" % ("[%s]" % host if ":" in host else host, int(port))
    return urlunsplit((parts.scheme, (userinfo + "@" if userinfo else "") + hostport, parts.path, parts.query,
                       parts.fragment))


def url_target(url):
    """``host:port`` of a database URL: what a report may show of it."""
    parts = urlsplit(url)
    return "%s:%s" % (parts.hostname, parts.port or 5432)


# After promotion: the new timeline, its history file, the settings a standby no longer needs, the slots wanted.
PROMOTED_SQL = """
SELECT json_build_object('in_recovery', pg_is_in_recovery(),
  'timeline', CASE WHEN NOT pg_is_in_recovery()
      THEN ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
  'current_lsn', CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn()::text END)::jsonb
"""


def promoted_point(history_text, old_timeline=None):
    """The LSN where the new timeline forked off (last entry of its history file, or the old timeline's)."""
    from ansible_collections.healthbutler.recovery.plugins.module_utils.walnames import parse_history
    entries = parse_history(history_text or "")
    if old_timeline is not None:
        entries = [e for e in entries if e["parent_tli"] == int(old_timeline)] or entries
    return entries[-1]["switch_lsn"] if entries else None


def slots_sql(names):
    """Create the physical slots ``names`` that do not exist; yields the list created."""
    values = ", ".join(psql.quote_literal(n) for n in names)
    return ("SELECT coalesce(json_agg(n), '[]')::jsonb FROM (SELECT n, pg_create_physical_replication_slot(n) FROM "
            "unnest(ARRAY[%s]::text[]) AS n WHERE n NOT IN (SELECT slot_name FROM pg_replication_slots)) s" % values)


RESET_STANDBY_SQL = ("ALTER SYSTEM RESET primary_conninfo; ALTER SYSTEM RESET primary_slot_name; "
                     "ALTER SYSTEM RESET restore_command; SELECT pg_reload_conf();")


def promote(runner, conn, data_dir, pg_bindir, timeout=60, slots=(), old_primary_end_lsn=None, check_mode=False,
            sleep=None):
    """Promote the standby at ``data_dir`` (nothing when it is a primary already) and report the promoted point.

    Returns ``{changed, promoted, timeline, promoted_lsn, slots_created, rpo}``.
    """
    import time
    sleep = sleep or time.sleep
    before = psql.query_json(runner, conn, STATE_SQL, timeout=30)
    out = {"changed": False, "was_in_recovery": bool(before.get("in_recovery")), "slots_created": [],
           "old_timeline": before.get("timeline")}
    if before.get("in_recovery"):
        out["changed"] = True
        if check_mode:
            out.update(promoted=False, timeline=None, promoted_lsn=None, rpo=rpo(old_primary_end_lsn, None))
            return out
        runner.check([os.path.join(pg_bindir, "pg_ctl"), "-D", data_dir, "-w", "-t", str(int(timeout)), "promote"],
                     what="pg_ctl promote")
    after = {}
    for _attempt in range(int(timeout) * 2):
        after = psql.query_json(runner, conn, PROMOTED_SQL, timeout=30)
        if not after.get("in_recovery"):
            break
        sleep(0.5)
    if after.get("in_recovery"):
        raise CommandError("the server is still in recovery %ss after pg_ctl promote" % timeout)
    out["promoted"] = True
    out["timeline"] = after["timeline"]
    history = os.path.join(data_dir, "pg_wal", "%08X.history" % int(after["timeline"]))
    text = ""
    if int(after["timeline"]) > 1 and os.path.exists(history):
        with open(history, encoding="utf-8") as fh:
            text = fh.read()
    out["promoted_lsn"] = promoted_point(text, out["old_timeline"] if out["was_in_recovery"] else None)
    if out["was_in_recovery"]:
        psql.execute(runner, conn, RESET_STANDBY_SQL, timeout=30)
    if slots and not check_mode:
        out["slots_created"] = psql.query_json(runner, conn, slots_sql(slots), timeout=30) or []
        out["changed"] = out["changed"] or bool(out["slots_created"])
    out["rpo"] = rpo(old_primary_end_lsn, out["promoted_lsn"])
    return out
