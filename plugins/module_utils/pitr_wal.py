# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""What the archived WAL itself says about a PITR target, read with ``pg_waldump`` (read-only).

The catalogue knows segments and base backups; only the records know where a target really lands:

* the commits inside a base backup (between its start and its end-of-backup record): a time target before
  one of them stops replay before the backup is consistent, which PostgreSQL refuses;
* the last commit or restore point archived: a time target after it is never reached (replay ends first);
* the last record archived: the end-of-WAL point a time target past the last commit can recover to instead;
* the commit of an xid or a restore point along a timeline's history (segments of each timeline in turn).
"""

from __future__ import annotations

import re

from ansible_collections.healthbutler.recovery.plugins.module_utils import walnames
from ansible_collections.healthbutler.recovery.plugins.module_utils.pitr_plan import parse_waldump

_LSN_RE = re.compile(r"lsn: ([0-9A-F]+/[0-9A-F]+)")
BACKWARD_LIMIT = 64  # segments searched back from the end for the last commit (1 GiB of WAL)


def read_records(runner, waldump, wal_dir, first, last, rmgrs=("Transaction", "XLOG")):
    """Commit and restore-point records of segments ``first``..``last`` (one timeline), sorted by LSN."""
    out = []
    for rmgr in rmgrs:
        res = runner.run([waldump, "--path", wal_dir, "--rmgr", rmgr, first, last], env={"TZ": "UTC"})
        out += parse_waldump(res.stdout)  # a record running past ``last`` ends the dump with an error: keep the rest
    return sorted(out, key=lambda r: walnames.parse_lsn(r["lsn"]))


def chunks_along(first_wal, last_wal, path, seg_size=walnames.WAL_SEG_SIZE):
    """The walk from ``first_wal`` to ``last_wal`` along ``path``, as ``[(first, last)]`` per timeline."""
    chunks = []
    for segno in range(walnames.segment_number(first_wal, seg_size), walnames.segment_number(last_wal, seg_size) + 1):
        name = walnames.expected_segment(segno, path, seg_size)
        if chunks and walnames.timeline_of(chunks[-1][1]) == walnames.timeline_of(name):
            chunks[-1][1] = name
        else:
            chunks.append([name, name])
    return [tuple(c) for c in chunks]


def records_along(runner, waldump, wal_dir, first_wal, last_wal, path, rmgrs=("Transaction", "XLOG")):
    """Records from ``first_wal`` to ``last_wal`` following the timeline history ``path``."""
    out = []
    for first, last in chunks_along(first_wal, last_wal, path):
        out += read_records(runner, waldump, wal_dir, first, last, rmgrs)
    return out


def commits_inside_backup(runner, waldump, wal_dir, base):
    """Commits between a base backup's start and its end-of-backup point (``stop_lsn``)."""
    if not base.get("start_wal") or not base.get("stop_lsn"):
        return []
    stop = walnames.parse_lsn(base["stop_lsn"])
    start = walnames.parse_lsn(base["start_lsn"]) if base.get("start_lsn") else 0
    last = walnames.segment_of(max(stop - 1, 0), int(base["timeline"]))
    records = read_records(runner, waldump, wal_dir, base["start_wal"], last, rmgrs=("Transaction",))
    return [r for r in records if r["kind"] == "commit" and start <= walnames.parse_lsn(r["lsn"]) < stop]


def last_commit(runner, waldump, wal_dir, start_wal, last_wal, path, limit=BACKWARD_LIMIT):
    """The newest commit or restore point from ``last_wal`` back towards ``start_wal`` (None if none found)."""
    first = walnames.segment_number(start_wal)
    segno = walnames.segment_number(last_wal)
    while segno >= first and limit > 0:
        name = walnames.expected_segment(segno, path)
        found = read_records(runner, waldump, wal_dir, name, name)
        if found:
            return found[-1]
        segno -= 1
        limit -= 1
    return None


def last_record_lsn(runner, waldump, wal_dir, last_wal):
    """The LSN of the last complete record in ``last_wal`` (the end of replayable WAL)."""
    res = runner.run([waldump, "--path", wal_dir, last_wal, last_wal])
    found = _LSN_RE.findall(res.stdout)
    return found[-1] if found else None


def locate_on_timelines(runner, waldump, wal_dir, start_wal, paths, target):
    """Find an xid's commit or a restore point along each candidate timeline ``{tli: (path, last_wal)}``.

    Returns ``{tli: hit}`` for every timeline whose history holds it (hit = record with lsn and time).
    """
    hits = {}
    for tli, (path, last_wal) in sorted(paths.items()):
        if not last_wal:
            continue
        records = records_along(runner, waldump, wal_dir, start_wal, last_wal, path,
                                rmgrs=("Transaction",) if target["kind"] == "xid" else ("XLOG",))
        if target["kind"] == "xid":
            match = [r for r in records if r["kind"] == "commit" and r["xid"] == target["value"]]
            hit = match[0] if match else None
        else:
            match = [r for r in records if r["kind"] == "restore_point" and r["name"] == target["value"]]
            hit = match[-1] if match else None
        if hit:
            hits[tli] = hit
    return hits


def restore_point_names(runner, waldump, wal_dir, first, last):
    """Names of the restore points in ``first``..``last`` (for the message of a name not found)."""
    if not last:
        return []
    records = read_records(runner, waldump, wal_dir, first, last, rmgrs=("XLOG",))
    return sorted({r["name"] for r in records if r["kind"] == "restore_point"})


def plan_with_wal(runner, waldump, wal_dir, catalog, target, now, backup_name=None, resolved=None):
    """``pitr_plan.build_plan``, then make every accepted time target one that replay really reaches.

    * Inside a base backup: a commit between the backup's whole-second STOP TIME and its end-of-backup
      record that is later than the target would stop replay before consistency. The next older backup is
      tried; a named backup is refused with the first time that works.
    * After the last archived commit or restore point: refused naming it, or with
      ``past_last_commit: end_of_wal`` replaced by an LSN target at the last archived record.
    """
    from ansible_collections.healthbutler.recovery.plugins.module_utils import pitr_plan as pp

    exclude, inside = [], {}
    while True:
        try:
            plan = pp.build_plan(catalog, target, now, backup_name, resolved, exclude=exclude)
        except pp.PlanError as exc:
            if inside:
                exc.msg += "; skipped as the target is inside them: %s" % "; ".join(
                    "%s (a commit at %s, before its end-of-backup point, is after the target)" % kv
                    for kv in inside.items())
            raise
        if target["kind"] != "time":
            return plan
        base = plan["base_backup"]
        late = [c for c in commits_inside_backup(runner, waldump, wal_dir, base)
                if pp.parse_iso(c["time"]) > target["time"]]
        if not late:
            break
        if backup_name:
            raise pp.PlanError(
                "target.time %s is inside base backup %s: it ended at LSN %s (STOP TIME %s is whole seconds) and a "
                "commit at %s (LSN %s) before that end is after the target, so replay would stop before the backup "
                "is consistent. Give a time at or after %s, or an older base backup" % (
                    target["value"], base["name"], base["stop_lsn"], base["stop_time"], late[-1]["time"],
                    late[-1]["lsn"], late[-1]["time"]), field="time")
        inside[base["name"]] = late[-1]["time"]
        exclude.append(base["name"])
    reach = plan["wal_reach"]
    path = walnames.timeline_path(plan["recovery_timeline"], (catalog.get("wal") or {}).get("history") or {})
    newest = last_commit(runner, waldump, wal_dir, base["start_wal"], reach["last"], path)
    plan["last_commit"] = newest
    if newest and newest.get("time") and pp.parse_iso(newest["time"]) < target["time"]:
        end = last_record_lsn(runner, waldump, wal_dir, reach["last"])
        if target["past_last_commit"] != "end_of_wal" or not end:
            raise pp.PlanError(
                "target.time %s is after the last commit in the archived WAL (%s, LSN %s, on timeline %s): replay "
                "would end before reaching it. Give a time at or before %s, or add \"past_last_commit\": "
                "\"end_of_wal\" to the target to recover to the end of the archived WAL (LSN %s)" % (
                    target["value"], newest["time"], newest["lsn"], plan["recovery_timeline"], newest["time"], end),
                field="time")
        by_lsn = pp.parse_target({"lsn": end, "inclusive": True, "action": target["action"],
                                  "timeline": target["timeline"]}, now)
        plan = pp.build_plan(catalog, by_lsn, now, base["name"], exclude=exclude)
        plan["last_commit"] = newest
        plan["target"]["instead_of"] = {"time": target["value"], "why": "after the last archived commit %s; "
                                        "past_last_commit=end_of_wal" % newest["time"]}
    return plan
